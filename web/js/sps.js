// sps.js -- Smart protection: the source lists smart-scan agents use
// (the standard list and lists by IP range), the status of each source,
// and the warnings about agents that cannot reach a list's sources by
// address family.
import { call, get } from './api.js';
import { dialog, download, field, fill, fmtAgo, fmtTime, h, toast } from './dom.js';

// The host of a source URL, without brackets.
function hostOf(url) {
	try {
		return new URL(url).hostname.replace(/^\[|\]$/g, '');
	} catch {
		return '';
	}
}

// What is known of a source: the integrated server, an enrolled ward-sps
// (by the names in its certificate), or an outside server.
function sourceStatus(src, integrated, servers) {
	if (src === 'integrated')
		return integrated ? h('span', { class: integrated.version ? 'ok' : 'warn' },
			integrated.version ? `serving pattern ${integrated.version}` : 'no pattern yet') :
			h('span', { class: 'bad' }, 'disabled on this server');
	const host = hostOf(src);
	const s = servers.find((x) => x.hostname === host || (x.names || []).includes(host));
	if (!s)
		return h('span', { class: 'muted' }, 'not enrolled with this server');
	return h('span', { class: s.state === 'online' ? 'ok' : 'bad' }, `${s.hostname}: ${s.state}` +
		(s.status && s.status.version ? `, pattern ${s.status.version}` : ''));
}

function listsEditor(el, data, integrated, servers, reload) {
	const body = h('tbody', {});
	const err = h('div', { class: 'error' });
	const add = (l = { range: '*', sources: ['integrated'] }) => {
		const sources = h('textarea', { 'data-f': 'sources', rows: 3 }, l.sources.join('\n'));
		const tr = h('tr', {},
			h('td', {}, h('input', { 'data-f': 'range', value: l.range, size: 18 }),
				h('div', { class: 'muted' }, l.range === '*' ? 'standard list' : '')),
			h('td', {}, sources, h('div', {}, l.sources.map((s) => h('div', { class: 'origin' },
				`${s}: `, sourceStatus(s, integrated, servers))))),
			h('td', {}, h('input', { 'data-f': 'proxy', value: l.proxy || '', size: 22,
				placeholder: 'http://proxy:3128 (none)' })),
			h('td', {}, h('button', { class: 'secondary write', onclick: () => tr.remove() },
				'x')));
		body.append(tr);
	};
	data.lists.forEach((l) => add(l));
	fill(el, h('section', { class: 'panel', id: 'sps-lists' },
		h('h2', {}, 'Source lists'),
		h('p', { class: 'muted' }, 'An agent uses the first list whose range holds one of its ' +
			'addresses ("*": the standard list), trying its sources in order; "integrated" is ' +
			'this server\'s own smart protection server. Agents in no list use the integrated ' +
			'one.'),
		data.warnings.length ? h('div', { class: 'notice', id: 'sps-warnings' },
			data.warnings.map((w) => h('div', {}, w))) : null,
		h('table', {}, h('tr', {}, h('th', {}, 'Range'), h('th', {}, 'Sources (one a line)'),
			h('th', {}, 'Proxy'), h('th', {})), body),
		err,
		h('div', { class: 'row' },
			h('button', { class: 'secondary write', onclick: () => add() }, 'Add list'),
			h('button', { class: 'write', id: 'save-lists', onclick: async () => {
				fill(err);
				const lists = [...body.children].map((tr) => {
					const l = { range: tr.querySelector('[data-f=range]').value.trim(),
						sources: tr.querySelector('[data-f=sources]').value.split('\n')
							.map((s) => s.trim()).filter((s) => s) };
					const proxy = tr.querySelector('[data-f=proxy]').value.trim();
					if (proxy)
						l.proxy = proxy;
					return l;
				});
				try {
					await call('PUT', '/api/v1/sps-lists', { lists });
					toast(`Smart protection source lists saved (${lists.length})`);
					reload();
				} catch (e) {
					fill(err, e.message);
				}
			} }, 'Save'))));
}

// Changes a ward-sps's trust: agents trust enabled servers only; a
// revoked one is so for good.
async function setTrust(s, what, reload) {
	if (what === 'revoke' && !confirm(`Revoke ${s.hostname} for good? Agents stop trusting ` +
		'it and it must enroll again with a new token.'))
		return;
	try {
		await call('POST', `/api/v1/sps-servers/${what}`, { id: s.id });
		toast(`${s.hostname}: ${what === 'enable' ? 'enabled' : what + 'd'}`);
		reload();
	} catch (e) {
		toast(e.message, true);
	}
}

function trustCell(s, reload) {
	const act = (what, label) => h('button', { class: 'secondary write', 'data-act': what,
		onclick: () => setTrust(s, what, reload) }, label);
	return h('td', {}, h('span', { class: s.trust === 'enabled' ? 'ok' : 'bad' }, s.trust),
		s.trust === 'enabled' ? act('disable', 'Disable') : '',
		s.trust === 'disabled' ? act('enable', 'Enable') : '',
		s.trust !== 'revoked' ? act('revoke', 'Revoke') : '');
}

// A token for one new ward-sps, its bundle downloaded.
async function addDialog() {
	const days = h('input', { id: 'sps-token-days', type: 'number', value: 1, min: 1, max: 30 });
	const made = h('div', { id: 'sps-token-made' });
	await dialog('Add a smart protection server', [
		h('p', { class: 'muted' }, 'A token enrolls one ward-sps. Copy the bundle to its host ' +
			'and run, as its user: ward-sps enroll --bundle sps.bundle --name HOST (names ' +
			'agents reach it by; none of this server\'s).'),
		field('Valid for (days)', days), made],
	[{ label: 'Create token and download bundle', class: 'write', action: async () => {
		const r = await call('POST', '/api/v1/sps/tokens', { days: Number(days.value) });
		download('sps.bundle', { server: r.server, ca: r.ca, token: r.token });
		fill(made, h('p', {}, `Token ${r.id}, for one server, until ${fmtTime(r.expires)}.`));
		return false;
	} }]);
}

function serversTable(el, integrated, servers, reload) {
	fill(el, h('section', { class: 'panel', id: 'sps-servers' },
		h('h2', {}, 'Smart protection servers'),
		h('table', {},
			h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'Names'), h('th', {}, 'State'),
				h('th', {}, 'Trust'), h('th', {}, 'Pattern'), h('th', {}, 'Requests'),
				h('th', {}, 'Latency p99'), h('th', {}, 'Last seen')),
			h('tr', {}, h('td', {}, 'integrated (wardd)'), h('td', {}, ''),
				h('td', { class: integrated ? 'ok' : 'muted' }, integrated ? 'running' : 'disabled'),
				h('td', {}, ''),
				h('td', {}, integrated && integrated.version ?
					`${integrated.version} (${integrated.entries} entries)` : ''),
				h('td', {}, integrated ? integrated.requests : ''),
				h('td', {}, integrated ? `${(integrated.latency_us.p99 / 1000).toFixed(2)} ms` : ''),
				h('td', {}, '')),
			servers.map((s) => h('tr', { 'data-sps': s.hostname },
				h('td', {}, s.hostname), h('td', { class: 'mono' }, (s.names || []).join(', ')),
				h('td', { class: s.state === 'online' ? 'ok' : 'bad' }, s.state),
				trustCell(s, reload),
				h('td', {}, s.status && s.status.version ?
					`${s.status.version} (${s.status.entries} entries)` : 'none yet'),
				h('td', {}, s.status ? s.status.requests : ''),
				h('td', {}, s.status && s.status.latency_us ?
					`${(s.status.latency_us.p99 / 1000).toFixed(2)} ms` : ''),
				h('td', {}, fmtAgo(s.last_seen))))),
		h('div', { class: 'row' }, h('button', { id: 'sps-add', class: 'write',
			onclick: addDialog }, 'Add a smart protection server...'))));
}

export function show(main) {
	const lists = h('div', {}, h('p', { class: 'muted' }, 'Loading...'));
	const servers = h('div', {});
	main.append(h('h1', {}, 'Smart protection'), lists, servers);
	async function load() {
		try {
			const [data, sv, o] = await Promise.all([get('/api/v1/sps-lists'),
				get('/api/v1/sps-servers'), get('/api/v1/overview')]);
			listsEditor(lists, data, o.sps.integrated, sv.servers, load);
			serversTable(servers, o.sps.integrated, sv.servers, load);
		} catch (e) {
			if (e.status !== 401)
				fill(lists, h('p', { class: 'error' }, e.message));
		}
	}
	load();
}
