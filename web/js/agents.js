// agents.js -- Agents > Agent management: the client tree (root, domains,
// clients) with search and filters over a virtual list that stays quick
// with tens of thousands of agents, multi-select and the actions on
// clients and domains; the settings of a domain or client with where each
// comes from. Everything goes through the REST API (docs/api.md).
import { call, each, get, query } from './api.js';
import { dialog, download, field, fill, fmtAgo, fmtTime, h, pill, toast } from './dom.js';
import { describeScope, settingsPanel } from './settings.js';
import { clamdText, lastScanText, realtimeCell, realtimeDetail, scanNowFields,
	scanTasksPanel } from './scans.js';

const ROW = 32;          // px; matches --row in console.css
const AUTO_REFRESH = 2000; // agents up to which the list refreshes by itself

let st;  // this page's state while it is shown

function freshState() {
	return {
		domains: new Map(),   // id -> { id, name, path, parent, children: [] }
		clients: [], shown: [], byId: new Map(),
		latest: {},           // component name -> newest version
		domain: 1, subtree: true,
		filter: { text: '', state: '', method: '', version: '' },
		selected: new Set(),
		detail: null,         // { kind: 'domain' | 'client', id }
		timer: null,
	};
}

function walkTree(node, parent, path) {
	const d = { id: node.id, name: node.name, path, parent, children: [] };
	st.domains.set(node.id, d);
	for (const c of node.domains) {
		const child = walkTree(c, node.id, path === '/' ? `/${c.name}` : `${path}/${c.name}`);
		d.children.push(child);
	}
	return d;
}

// The ids of domain id and of every domain below it.
function subtreeIds(id) {
	const out = new Set([id]);
	const d = st.domains.get(id);
	for (const c of d ? d.children : [])
		for (const x of subtreeIds(c.id))
			out.add(x);
	return out;
}

function componentOf(c) {
	const method = c.status && c.status.scan_method;
	return method === 'smart' ? 'smart-agent-pattern' : method ? 'virus-pattern' : null;
}

function versionOf(c) {
	const comp = componentOf(c);
	return comp && c.status.components ? c.status.components[comp] || 0 : null;
}

function address(c) {
	const s = c.status || {};
	return (s.ipv4 && s.ipv4[0]) || (s.ipv6 && s.ipv6[0]) || '';
}

// Applies the domain and filters to the client list.
function applyFilter() {
	const f = st.filter;
	const text = f.text.trim().toLowerCase();
	const within = st.subtree ? subtreeIds(st.domain) : new Set([st.domain]);
	st.shown = st.clients.filter((c) => {
		if (!within.has(c.domain))
			return false;
		if (f.state && c.state !== f.state)
			return false;
		const method = (c.status && c.status.scan_method) || 'unknown';
		if (f.method && method !== f.method)
			return false;
		if (f.version) {
			const v = versionOf(c), latest = st.latest[componentOf(c)];
			const current = v && latest && v === latest;
			if (f.version === 'current' ? !current : current || v === null)
				return false;
		}
		if (text) {
			const s = c.status || {};
			const hay = [c.hostname, ...(s.ipv4 || []), ...(s.ipv6 || []),
				s.agent_version || ''].join(' ').toLowerCase();
			if (!hay.includes(text))
				return false;
		}
		return true;
	});
}

async function load(background) {
	const [tree, list, upd] = await Promise.all([get('/api/v1/tree', background),
		get('/api/v1/clients', background), get('/api/v1/update', background)]);
	st.domains.clear();
	walkTree(tree, null, '/');
	st.clients = list.clients;
	st.byId = new Map(st.clients.map((c) => [c.id, c]));
	st.latest = Object.fromEntries(upd.components.map((c) => [c.name, c.version]));
	// Clients moved to other servers are no action's target.
	for (const id of [...st.selected])
		if (!st.byId.has(id) || st.byId.get(id).state === 'moved')
			st.selected.delete(id);
	if (!st.domains.has(st.domain))
		st.domain = 1;
	applyFilter();
}

// Clients per domain, those moved to other servers counted apart.
function domainCounts() {
	const n = new Map(), moved = new Map();
	for (const c of st.clients) {
		const m = c.state === 'moved' ? moved : n;
		m.set(c.domain, (m.get(c.domain) || 0) + 1);
	}
	return { n, moved };
}

function renderTree(el) {
	const counts = domainCounts();
	const item = (d) => h('li', {},
		h('div', { class: d.id === st.domain ? 'sel' : '', 'data-domain': d.path,
			onclick: () => { st.domain = d.id; st.detail = { kind: 'domain', id: d.id };
				applyFilter(); render(); renderDetail(); } },
		h('span', {}, d.id === 1 ? 'Ward server (root)' : d.name),
		h('span', { class: 'muted' }, counts.n.get(d.id) || ''),
		counts.moved.get(d.id) ? h('span', { class: 'pill moved', 'data-moved': d.path,
			title: 'moved to other servers' }, `${counts.moved.get(d.id)} moved`) : null),
		d.children.length ? h('ul', {}, d.children.sort((a, b) =>
			a.name.localeCompare(b.name)).map(item)) : null);
	fill(el, h('ul', {}, item(st.domains.get(1))));
}

function domainOptions(selected) {
	return [...st.domains.values()].sort((a, b) => a.path.localeCompare(b.path)).map((d) =>
		h('option', { value: d.path, selected: d.path === selected }, d.path));
}

// The virtual list: only the rows in view are in the page.
function renderRows(body, inner) {
	const from = Math.max(0, Math.floor(body.scrollTop / ROW) - 5);
	const to = Math.min(st.shown.length, from + Math.ceil(body.clientHeight / ROW) + 10);
	const rows = [];
	for (let i = from; i < to; i++) {
		const c = st.shown[i];
		const v = versionOf(c), latest = st.latest[componentOf(c)];
		const moved = c.state === 'moved';
		const box = h('input', { type: 'checkbox', checked: st.selected.has(c.id),
			disabled: moved, title: moved ? 'moved to another server: managed there' : '',
			'aria-label': `select ${c.hostname}`,
			onclick: (ev) => {
				ev.stopPropagation();
				if (ev.target.checked)
					st.selected.add(c.id);
				else
					st.selected.delete(c.id);
				renderActions();
			} });
		const row = h('div', { class: `vrow${st.selected.has(c.id) ? ' sel' : ''}${moved ?
			' moved' : ''}`,
			'data-client': c.id, 'data-host': c.hostname,
			onclick: () => { st.detail = { kind: 'client', id: c.id }; renderDetail(); } },
		h('div', {}, box),
		h('div', { title: c.hostname }, c.hostname),
		h('div', {}, address(c)),
		h('div', {}, (st.domains.get(c.domain) || {}).path || ''),
		h('div', { 'data-col': 'state' }, pill(c.state)),
		h('div', { 'data-col': 'method' }, (c.status && c.status.scan_method) || 'unknown'),
		h('div', { 'data-col': 'realtime' }, realtimeCell(c.status && c.status.realtime)),
		h('div', { class: v !== null && latest && v !== latest ? 'warn' : '' },
			v === null ? '' : v ? `${v}${latest && v !== latest ? ` (newest ${latest})` : ''}` :
				'not installed'),
		h('div', { class: 'muted' }, fmtAgo(c.last_seen)));
		row.style.top = `${i * ROW}px`;
		rows.push(row);
	}
	inner.style.height = `${st.shown.length * ROW}px`;
	fill(inner, rows);
}

let els = {};

function renderActions() {
	const n = st.selected.size;
	fill(els.count, n ? `${n} selected` : 'none selected', ` of ${st.shown.length} shown`,
		st.shown.length !== st.clients.length ? ` (${st.clients.length} in all)` : '');
	for (const b of els.clientButtons)
		b.disabled = n === 0;
}

// Redraws the tree and the list; the detail area is redrawn only when
// what it shows changes (it reloads itself after its own edits).
function render() {
	const path = currentDomain().path;
	if (els.scans.domain !== path) {
		els.scans.domain = path;
		els.scans.show(path);
	}
	renderTree(els.tree);
	renderRows(els.body, els.inner);
	renderActions();
}

async function refresh(background) {
	try {
		await load(background === true);
		render();
		await refreshProtection(background === true);
	} catch (e) {
		if (e.status !== 401)
			toast(e.message, true);
	}
}

function selectedIds() {
	return [...st.selected];
}

function currentDomain() {
	return st.domains.get(st.domain);
}

// --- actions on clients ---

// Scan Now on the selected clients or the domain in view.
async function scanNowDialog() {
	const ids = selectedIds();
	const d = currentDomain();
	const targets = [];
	if (ids.length)
		targets.push({ label: `the ${ids.length} selected client(s)`,
			scopes: ids.map((id) => `client:${id}`) });
	targets.push(d.id === 1 ? { label: 'every agent (the root)', scopes: ['root'] } :
		{ label: `domain ${d.path} and below`, scopes: [`domain:${d.path}`] });
	const f = scanNowFields(targets);
	await dialog('Scan Now', [h('p', { class: 'muted' }, 'Each online agent of the target ' +
		'scans now; offline ones are skipped. Progress shows under Scan tasks.'), f.fields],
	[{ label: 'Scan now', action: async () => {
		await f.apply(each);
		els.scans.show(currentDomain().path);
	} }]);
}

async function scanMethodDialog() {
	const ids = selectedIds();
	const d = currentDomain();
	const method = h('select', { id: 'method' }, h('option', { value: 'smart' }, 'Smart scan'),
		h('option', { value: 'conventional' }, 'Conventional scan'));
	const target = h('select', { id: 'target' },
		ids.length ? h('option', { value: 'clients' }, `the ${ids.length} selected client(s)`) :
			null,
		d.id !== 1 ? h('option', { value: 'domain' }, `domain ${d.path}`) : null,
		h('option', { value: 'root' }, 'the root (every agent)'));
	const apply = h('select', { id: 'apply' },
		h('option', { value: 'all' }, 'apply to all below'),
		h('option', { value: 'inherit' }, 'only where not set'));
	const progress = h('div', { class: 'muted' });
	await dialog('Scan method', [field('Method', method), field('Set on', target),
		field('Domains and clients below', apply), progress], [{ label: 'Apply',
		action: async () => {
			if (target.value === 'clients') {
				const errors = await each(ids, 4, (id) => call('PUT', '/api/v1/settings',
					{ scope: `client:${id}`, key: 'scan_method', value: method.value }),
				(done, all) => fill(progress, `${done} of ${all}`));
				if (errors.length)
					throw new Error(`${errors.length} failed: ${errors.slice(0, 3).join('; ')}`);
				toast(`Scan method ${method.value} set on ${ids.length} client(s)`);
			} else {
				const scope = target.value === 'root' ? 'root' : `domain:${d.path}`;
				const r = await call('PUT', '/api/v1/settings', { scope, key: 'scan_method',
					value: method.value, apply: apply.value });
				toast(`Scan method ${method.value} set on ${describeScope(scope)}: ` +
					`${r.changed} client(s) changed`);
			}
			refresh();
		} }]);
}

async function moveDialog() {
	const ids = selectedIds();
	const to = h('select', { id: 'move-to' }, domainOptions(currentDomain().path));
	await dialog(`Move ${ids.length} client(s) to a domain`, field('Domain', to), [{
		label: 'Move', action: async () => {
			const r = await call('POST', '/api/v1/clients/move', { ids, to: to.value });
			toast(`${r.moved} client(s) moved to ${to.value}`);
			refresh();
		} }]);
}

async function moveServerDialog() {
	const ids = selectedIds();
	const host = h('input', { id: 'target-host', placeholder: 'ward2.example.com' });
	const port = h('input', { id: 'target-port', type: 'number', value: 8443, min: 1,
		max: 65535 });
	const token = h('input', { id: 'target-token', placeholder: 'enrollment token' });
	const ca = h('textarea', { id: 'target-ca', rows: 6,
		placeholder: '-----BEGIN CERTIFICATE-----' });
	await dialog(`Move ${ids.length} client(s) to another server`, [
		h('p', { class: 'muted' }, 'The agents enroll with the target server, in the domain of ' +
			'the same path, and leave this one once they have.'),
		field('Target server host name', host), field('Port', port),
		field("Target server's enrollment token", token),
		field("Target server's CA certificate (PEM)", ca)], [{ label: 'Move',
		action: async () => {
			const name = host.value.trim();
			if (!name)
				throw new Error('enter the target host name');
			const server = name.includes(':') && !name.startsWith('[') ?
				`https://[${name}]:${port.value}` : `https://${name}:${port.value}`;
			const r = await call('POST', '/api/v1/clients/move-server',
				{ ids, server, token: token.value.trim(), ca: ca.value });
			const failed = r.results.filter((x) => !x.ok);
			if (failed.length)
				throw new Error(failed.map((x) => `${x.id}: ${x.error}`).join('; '));
			toast(`${ids.length} client(s) are moving to ${server}`);
			refresh();
		} }]);
}

async function updateNow() {
	const ids = selectedIds();
	let told = 0;
	const errors = await each(ids, 4, async (id) => {
		const r = await call('POST', '/api/v1/update/agents', { scope: `client:${id}` });
		told += r.notified;
	});
	toast(errors.length ? `Update Now failed for ${errors.length}: ${errors[0]}` :
		`${told} agent(s) told to update now (offline and roaming ones update later)`,
	errors.length > 0);
}

async function verify() {
	const r = await call('POST', '/api/v1/clients/verify');
	const s = r.summary;
	toast(`Verified: ${s.online} online, ${s.offline} offline, ${s.roaming} roaming, ` +
		`${s.inactive} inactive; ${r.changed.length} changed`);
	refresh();
}

// Removes the selected clients, or those of ids (a moved client, from its
// detail: no selection offers it).
async function removeDialog(ids = selectedIds()) {
	await dialog(`Remove ${ids.length} client(s)`, h('p', {}, 'They leave the tree and their ' +
		'credentials stop working; nothing is uninstalled. An agent that still runs must ' +
		'enroll again to come back.'), [{ label: 'Remove', class: 'danger', action: async () => {
		const r = await call('POST', '/api/v1/clients/remove', { ids });
		ids.forEach((id) => st.selected.delete(id));
		toast(`${r.removed} client(s) removed`);
		refresh();
	} }]);
}

// --- actions on domains ---

async function newDomain() {
	const parent = currentDomain();
	const name = h('input', { id: 'domain-name' });
	await dialog(`New domain under ${parent.path}`, field('Name', name), [{ label: 'Create',
		action: async () => {
			const path = `${parent.path === '/' ? '' : parent.path}/${name.value.trim()}`;
			await call('POST', '/api/v1/domains', { path });
			toast(`Domain ${path} created`);
			await load();
			st.domain = [...st.domains.values()].find((d) => d.path === path).id;
			applyFilter();
			render();
		} }]);
}

async function renameDomain() {
	const d = currentDomain();
	const name = h('input', { id: 'domain-name', value: d.name });
	await dialog(`Rename ${d.path}`, field('New name', name), [{ label: 'Rename',
		action: async () => {
			await call('POST', '/api/v1/domains/rename', { path: d.path, name: name.value.trim() });
			toast(`${d.path} renamed to ${name.value.trim()}`);
			refresh();
		} }]);
}

async function moveDomain() {
	const d = currentDomain();
	const below = subtreeIds(d.id);
	const to = h('select', { id: 'domain-to' }, domainOptions('/').filter((o) =>
		![...below].some((id) => st.domains.get(id).path === o.value)));
	await dialog(`Move ${d.path}`, field('New parent', to), [{ label: 'Move',
		action: async () => {
			await call('POST', '/api/v1/domains/move', { path: d.path, to: to.value });
			toast(`${d.path} moved under ${to.value}`);
			refresh();
		} }]);
}

async function deleteDomain() {
	const d = currentDomain();
	await dialog(`Delete ${d.path}`, h('p', {}, 'Only an empty domain (no domains or clients ' +
		'in it) can be deleted.'), [{ label: 'Delete', class: 'danger', action: async () => {
		await call('DELETE', `/api/v1/domains${query({ path: d.path })}`);
		toast(`${d.path} deleted`);
		st.domain = d.parent || 1;
		st.detail = null;
		renderDetail();
		refresh();
	} }]);
}

// The domain structure with its settings and grouping rules, as a file:
// what another server imports to get the same structure.
async function exportStructure() {
	const data = await get('/api/v1/export');
	download('ward-domains.json', data);
	toast(`Exported ${data.domains ? data.domains.length : 0} domain(s)`);
}

// Agent enrollment tokens: a new one (its bundle downloaded, the token
// shown once, for ward-agent or another server's move), and those in force
// with their ids to revoke. (Smart protection servers have tokens of their
// own: sps.js.)
async function enrollDialog() {
	const here = st.domains.get(st.domain);
	const domain = h('select', { id: 'enroll-domain' }, domainOptions(here ? here.path : '/'));
	const days = h('input', { id: 'enroll-days', type: 'number', value: 30, min: 1, max: 3650 });
	const made = h('div', { id: 'enroll-made' });
	const list = h('tbody', { id: 'enroll-tokens' });
	const load = async () => {
		const { tokens } = await get('/api/v1/enroll/tokens');
		fill(list, tokens.filter((t) => t.kind === 'agent').map((t) => h('tr', {},
			h('td', { class: 'mono' }, t.id), h('td', {}, t.domain), h('td', {}, fmtTime(t.expires)),
			h('td', {}, h('button', { class: 'secondary', onclick: async () => {
				try {
					await call('POST', '/api/v1/enroll/tokens/revoke', { id: t.id });
					toast(`Enrollment token ${t.id} revoked`);
					await load();
				} catch (e) {
					toast(e.message, true);
				}
			} }, 'Revoke')))));
	};
	await load();
	await dialog('Add agents', [
		h('p', { class: 'muted' }, 'An enrollment token lets new agents join this server, ' +
			'in its domain or below: grouping rules apply within it. Copy the bundle to the ' +
			'endpoint and run: ward-agent enroll --bundle enroll.bundle'),
		field('Domain for new agents', domain), field('Valid for (days)', days), made,
		h('h3', {}, 'Tokens in force'),
		h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Domain'),
			h('th', {}, 'Expires'), h('th', {}))), list)],
	[{ label: 'Create token and download bundle', action: async () => {
		const r = await call('POST', '/api/v1/enroll/tokens',
			{ domain: domain.value, days: Number(days.value) });
		download('enroll.bundle', { server: r.server, ca: r.ca, token: r.token });
		fill(made, h('p', {}, `Token ${r.id} for ${r.domain}, until ${fmtTime(r.expires)} ` +
			'(shown only now):'), h('input', { id: 'enroll-token', readonly: true,
			class: 'mono', value: r.token }));
		await load();
		return false;
	} }]);
}

// Clients removed from the tree (by an administrator or for inactivity),
// kept for agents.removed_keep: each can be put back, credential and own
// settings included.
async function removedDialog() {
	const list = h('tbody', { id: 'removed-clients' });
	const load = async () => {
		const { clients } = await get('/api/v1/clients/removed');
		fill(list, clients.length ? clients.map((c) => h('tr', { 'data-removed': c.id },
			h('td', {}, c.hostname), h('td', {}, c.domain), h('td', {}, fmtTime(c.removed)),
			h('td', {}, c.why),
			h('td', {}, h('button', { class: 'secondary write', onclick: async () => {
				try {
					const r = await call('POST', '/api/v1/clients/restore', { ids: [c.id] });
					if (!r.results[0].ok)
						throw new Error(r.results[0].error);
					toast(`${c.hostname} restored to ${c.domain}`);
					await load();
					await refresh();
				} catch (e) {
					toast(e.message, true);
				}
			} }, 'Restore')))) : h('tr', {}, h('td', { colspan: 5, class: 'muted' },
			'No removed client is kept.')));
	};
	await load();
	await dialog('Removed clients', [
		h('p', { class: 'muted' }, 'Clients removed from the tree are kept for a while: ' +
			'restoring one brings it back with its credential and its own settings.'),
		h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'Domain'),
			h('th', {}, 'Removed'), h('th', {}, 'Why'), h('th', {}))), list)], []);
}

async function importDialog() {
	const file = h('input', { type: 'file', id: 'import-file', accept: '.json,application/json' });
	await dialog('Import a domain structure', [
		h('p', { class: 'muted' }, 'An export of this or another server: its domains are ' +
			'created here, with their settings and the grouping rules. Clients are not moved.'),
		field('Export file', file)], [{ label: 'Import', action: async () => {
		if (!file.files.length)
			throw new Error('choose an export file');
		let data;
		try {
			data = JSON.parse(await file.files[0].text());
		} catch (e) {
			throw new Error(`${file.files[0].name}: not JSON (${e.message})`);
		}
		const r = await call('POST', '/api/v1/import', { export: data });
		const failed = r.results.filter((x) => !x.ok);
		toast(`${r.imported} domain(s) imported` + (failed.length ?
			`; ${failed.length} failed: ${failed[0].path}: ${failed[0].error}` : ''),
		failed.length > 0);
		refresh();
	} }]);
}

async function groupingDialog() {
	const { rules } = await get('/api/v1/grouping');
	const list = h('tbody', {});
	const addRule = (r = { match: 'ip', value: '', domain: '/' }) => {
		const tr = h('tr', {},
			h('td', {}, h('select', { 'data-f': 'match' },
				h('option', { value: 'ip', selected: r.match === 'ip' }, 'IP range'),
				h('option', { value: 'host', selected: r.match === 'host' }, 'host name'))),
			h('td', {}, h('input', { 'data-f': 'value', value: r.value,
				placeholder: '10.1.0.0/16 or lab.example.com' })),
			h('td', {}, h('select', { 'data-f': 'domain' }, domainOptions(r.domain))),
			h('td', {}, h('button', { class: 'secondary', onclick: () => tr.remove() }, 'x')));
		list.append(tr);
	};
	rules.forEach(addRule);
	await dialog('Client grouping rules', [
		h('p', { class: 'muted' }, 'New agents (and agents whose addresses change) go to the ' +
			'domain of the first rule that matches; with no rules, grouping is manual.'),
		h('table', {}, h('tr', {}, h('th', {}, 'Match'), h('th', {}, 'Value'),
			h('th', {}, 'Domain'), h('th', {})), list),
		h('button', { class: 'secondary', onclick: () => addRule() }, 'Add rule')], [{
		label: 'Save', action: async () => {
			const out = [...list.children].map((tr) => ({
				match: tr.querySelector('[data-f=match]').value,
				value: tr.querySelector('[data-f=value]').value.trim(),
				domain: tr.querySelector('[data-f=domain]').value }));
			await call('PUT', '/api/v1/grouping', { rules: out });
			toast(`${out.length} grouping rule(s) saved`);
		} }]);
}

// --- the detail area: a domain's or a client's settings ---

// What the agent of the client in the details changes as it works (its
// last scan, its real-time state), brought up to date with the list; the
// settings, which the administrator may be editing, are left as they are.
async function refreshProtection(background) {
	const det = st.detail;
	if (!det || det.kind !== 'client')
		return;
	let c = null;
	if (st.byId.has(det.id)) {
		try {
			c = await get(`/api/v1/client${query({ id: det.id })}`, background);
		} catch (e) {
			if (e.status !== 404)
				throw e;
		}
	}
	if (st.detail !== det)
		return;   // another one is shown now
	if (!c) {
		st.detail = null;   // removed: there is nothing to show
		fill(els.detail);
		return;
	}
	const last = els.detail.querySelector('#last-scan');
	const rt = els.detail.querySelector('#realtime-detail');
	if (!last || !rt)
		return;   // still being drawn
	const s = c.status || {};
	fill(last, lastScanText(c.last_scan || s.last_scan));
	rt.replaceWith(realtimeDetail(c.realtime || s.realtime));
}

async function renderDetail() {
	const el = els.detail;
	const det = st.detail;
	if (!det) {
		fill(el);
		return;
	}
	if (det.kind === 'domain') {
		const d = st.domains.get(det.id);
		if (!d) {
			fill(el);
			return;
		}
		const scope = d.id === 1 ? 'root' : `domain:${d.path}`;
		fill(el, h('section', { class: 'panel', id: 'detail' },
			h('h2', {}, `Settings of ${d.id === 1 ? 'the root' : `domain ${d.path}`}`),
			settingsPanel(scope, { onChange: refresh })));
		return;
	}
	fill(el, h('section', { class: 'panel', id: 'detail' }, h('p', { class: 'muted' },
		'Loading...')));
	let c;
	try {
		c = await get(`/api/v1/client${query({ id: det.id })}`);
	} catch (e) {
		fill(el, h('section', { class: 'panel', id: 'detail' }, h('p', { class: 'error' },
			e.message)));
		return;
	}
	const s = c.status || {};
	const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v === undefined || v === null ? '' : v)];
	fill(el, h('section', { class: 'panel', id: 'detail' },
		h('h2', {}, `Client ${c.hostname}`),
		h('dl', { class: 'kv' },
			kv('state', pill(c.state)),
			kv('domain', (st.domains.get(c.domain) || {}).path),
			kv('id / uuid', `${c.id} / ${c.uuid}`),
			kv('addresses', [...(s.ipv4 || []), ...(s.ipv6 || [])].join(', ')),
			kv('operating system', s.os),
			kv('agent version', s.agent_version),
			kv('scan method', s.scan_method || 'not reported yet'),
			kv('components', Object.entries(s.components || {}).map(([k, v]) =>
				`${k} ${v}`).join(', ') || 'none'),
			kv('last scan', h('span', { id: 'last-scan' }, lastScanText(c.last_scan ||
				s.last_scan))),
			kv('unverified files', s.unverified),
			kv('clamd service', h('span', { id: 'clamd-service' }, clamdText(s.clamd))),
			kv('update error', s.update_error || 'none'),
			kv('settings', `version ${c.version}, acknowledged ${c.acked_version}`),
			kv('last seen', fmtAgo(c.last_seen))),
		h('h3', {}, 'Real-time scanning'),
		realtimeDetail(c.realtime || s.realtime),
		c.state === 'moved' ?
			h('div', { id: 'moved-note' }, h('p', { class: 'muted' }, 'Moved to another ' +
				'server: it is managed there now. Here it can only be removed.'),
			h('button', { class: 'secondary write', id: 'remove-moved',
				onclick: () => removeDialog([c.id]).catch((e) => toast(e.message, true)) },
			'Remove...')) :
			[h('h3', {}, 'Settings'), settingsPanel(`client:${c.id}`, { onChange: refresh })]));
}

export function show(main) {
	st = freshState();
	const f = st.filter;
	const on = (key) => (ev) => { f[key] = ev.target.value; applyFilter();
		els.body.scrollTop = 0; renderRows(els.body, els.inner); renderActions(); };
	els.tree = h('div', {});
	els.inner = h('div', {});
	els.body = h('div', { class: 'vbody', id: 'client-rows' }, els.inner);
	els.body.addEventListener('scroll', () => renderRows(els.body, els.inner));
	els.count = h('span', { class: 'muted', id: 'selection' });
	els.detail = h('div', { class: 'detail' });
	const all = h('input', { type: 'checkbox', 'aria-label': 'select all shown',
		onclick: (ev) => {
			for (const c of st.shown)
				if (ev.target.checked && c.state !== 'moved')
					st.selected.add(c.id);
				else
					st.selected.delete(c.id);
			renderRows(els.body, els.inner);
			renderActions();
		} });
	// Those that change something are hidden from read-only administrators.
	const btn = (label, fn, id, read) => h('button', { class: read ? 'secondary' :
		'secondary write', id, onclick: async () => {
		try {
			await fn();
		} catch (e) {
			toast(e.message, true);
		}
	} }, label);
	els.scans = scanTasksPanel();
	els.clientButtons = [btn('Move to domain...', moveDialog, 'act-move'),
		btn('Move to server...', moveServerDialog, 'act-move-server'),
		btn('Update now', updateNow, 'act-update'),
		btn('Remove...', removeDialog, 'act-remove')];
	main.append(
		h('h1', {}, 'Agents ', h('span', { class: 'muted' }, '> Agent management')),
		h('div', { class: 'agents' },
			h('section', { class: 'panel tree', id: 'domain-tree' },
				h('div', { class: 'row' },
					btn('New domain', newDomain, 'dom-new'), btn('Rename', renameDomain, 'dom-rename'),
					btn('Move', moveDomain, 'dom-move'), btn('Delete', deleteDomain, 'dom-delete')),
				h('label', { class: 'inline' }, h('input', { type: 'checkbox', checked: true,
					id: 'subtree', onclick: (ev) => { st.subtree = ev.target.checked;
						applyFilter(); render(); } }), 'include domains below'),
				els.tree,
				h('div', { class: 'row' }, btn('Add agents...', enrollDialog, 'enroll'),
					btn('Grouping rules...', groupingDialog, 'grouping'),
					btn('Export', exportStructure, 'export', true),
					btn('Import...', importDialog, 'import'),
					btn('Removed clients...', removedDialog, 'removed', true))),
			h('section', { class: 'panel clients' },
				h('div', { class: 'row filters' },
					h('input', { id: 'search', class: 'grow', type: 'search',
						placeholder: 'Search host name, IP address or agent version',
						oninput: on('text') }),
					h('select', { id: 'f-state', onchange: on('state') },
						h('option', { value: '' }, 'any state'),
						['online', 'offline', 'roaming', 'inactive', 'moved'].map((s) =>
							h('option', { value: s }, s))),
					h('select', { id: 'f-method', onchange: on('method') },
						h('option', { value: '' }, 'any scan method'),
						['conventional', 'smart', 'unknown'].map((s) => h('option', { value: s }, s))),
					h('select', { id: 'f-version', onchange: on('version') },
						h('option', { value: '' }, 'any pattern version'),
						h('option', { value: 'current' }, 'up to date'),
						h('option', { value: 'outdated' }, 'out of date')),
					btn('Refresh', refresh, 'refresh', true)),
				h('div', { class: 'row actions' },
					btn('Scan method...', scanMethodDialog, 'act-method'),
					btn('Scan Now...', scanNowDialog, 'act-scan'),
					els.clientButtons,
					btn('Verify connections', verify, 'act-verify'),
					h('span', { class: 'grow' }), els.count),
				h('div', { class: 'vtable' },
					h('div', { class: 'vhead' }, h('div', {}, all), h('div', {}, 'Host name'),
						h('div', {}, 'IP address'), h('div', {}, 'Domain'), h('div', {}, 'State'),
						h('div', {}, 'Scan method'), h('div', {}, 'Real time'),
						h('div', {}, 'Pattern'),
						h('div', {}, 'Last seen')),
					els.body))),
		els.scans.el,
		els.detail);
	refresh();
	const mine = st;
	mine.timer = setInterval(() => {
		if (st === mine && st.clients.length <= AUTO_REFRESH)
			refresh(true);
	}, 5000);
	return () => {
		clearInterval(mine.timer);
		els.scans.stop();
	};
}
