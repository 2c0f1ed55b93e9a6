// updates.js -- Updates: the signature source and its import schedule,
// the components with their versions, history and how far each rollout
// has gone, Update Now to a scope, the download cap, the update source
// table and the package signing key.
import { call, get } from './api.js';
import { dialog, fill, fmtAgo, fmtBytes, fmtTime, h, toast } from './dom.js';

function progress(a) {
	const total = a.current + a.outdated + a.missing;
	const bar = h('div', { class: 'bar' }, [['b-ok', a.current], ['b-warn', a.outdated],
		['b-bad', a.missing]].map(([cls, n]) => {
		const s = h('span', { class: cls });
		s.style.width = `${total ? (100 * n) / total : 0}%`;
		return s;
	}));
	return [bar, h('div', { class: 'muted' }, total ? `${a.current} of ${total} agents on it` +
		(a.outdated ? `, ${a.outdated} older` : '') + (a.missing ? `, ${a.missing} without` : '') :
		'no agent uses it yet')];
}

function renderStatus(el, s, domains) {
	const li = s.last_import;
	const scope = h('select', { id: 'update-scope' }, h('option', { value: 'root' }, 'every agent'),
		domains.map((p) => h('option', { value: `domain:${p}` }, `domain ${p}`)));
	fill(el,
		h('section', { class: 'panel', id: 'source' },
			h('h2', {}, 'Signature import'),
			h('dl', { class: 'kv' },
				h('dt', {}, 'source'), h('dd', { class: 'mono' }, s.source_dir),
				h('dt', {}, 'last import'), h('dd', {}, li && li.time ?
					h('span', { class: li.ok ? 'ok' : 'bad' },
						`${fmtTime(li.time)} (${fmtAgo(li.time)}): ${li.message}`) : 'none yet'),
				h('dt', {}, 'now'), h('dd', {}, s.importing ? 'importing...' : 'idle')),
			h('button', { class: 'write', id: 'import-now', onclick: async (ev) => {
				ev.target.disabled = true;
				try {
					const r = await call('POST', '/api/v1/update/now');
					toast(`Import: ${r.message || 'done'}`, r.ok === false);
				} catch (e) {
					toast(e.message, true);
				}
				ev.target.disabled = false;
			} }, 'Import now')),
		h('section', { class: 'panel', id: 'components' },
			h('h2', {}, 'Components'),
			h('table', {},
				h('tr', {}, h('th', {}, 'Component'), h('th', {}, 'Version'), h('th', {}, 'Size'),
					h('th', {}, 'Rollout'), h('th', {}, 'History (versions kept)')),
				s.components.map((c) => h('tr', { 'data-component': c.name },
					h('td', {}, c.title), h('td', {}, c.version || 'not built'),
					h('td', {}, c.size ? fmtBytes(c.size) : ''),
					h('td', {}, c.name === 'smart-pattern' ? h('span', { class: 'muted' },
						'used by smart protection servers') : progress(c.agents)),
					h('td', {}, c.history.map((v) => h('div', { class: 'muted' },
						`${v.version}: ${fmtTime(v.created)}, ${fmtBytes(v.size)}`)))))),
			h('p', { class: 'muted' }, `Downloads now: ${s.downloads} (most at once: ` +
				`${s.downloads_peak}); cap: ${s.max_downloads} at once, more are told to ` +
				'retry.')),
		h('section', { class: 'panel', id: 'update-now' },
			h('h2', {}, 'Update Now'),
			h('p', { class: 'muted' }, 'Online agents update their components at once; roaming ' +
				'and offline ones at their next scheduled update.'),
			h('div', { class: 'row write' }, scope, h('button', { id: 'update-agents',
				onclick: async () => {
					try {
						const r = await call('POST', '/api/v1/update/agents', { scope: scope.value });
						const skipped = Object.entries(r.skipped || {}).filter(([, n]) => n)
							.map(([k, n]) => `${n} ${k}`);
						toast(`${r.notified} agent(s) told to update now` +
							(skipped.length ? `; skipped: ${skipped.join(', ')}` : ''));
					} catch (e) {
						toast(e.message, true);
					}
				} }, 'Update now'))),
		h('section', { class: 'panel', id: 'signing-key' },
			h('h2', {}, 'Package signing key'),
			h('p', {}, h('span', { class: 'mono' }, s.key), ` (${s.rotations} rotation(s))`),
			h('button', { class: 'secondary write', id: 'rotate-key', onclick: () => dialog(
				'Rotate the package signing key', h('p', {}, 'A new key replaces the current ' +
					'one, which signs it; agents follow at their next update.'), [{
					label: 'Rotate', class: 'danger', action: async () => {
						await call('POST', '/api/v1/update/rotate-key');
						toast('Signing key rotated');
					} }]) }, 'Rotate key...')));
}

// The signature source, the import schedule and the download cap: set
// here over wardd.conf's values, or back to them.
function settingsForm(el) {
	const fields = [
		{ key: 'source_dir', label: 'Signature source (a directory of ClamAV databases on ' +
			'the server)', type: 'text' },
		{ key: 'watch_interval', label: 'Look at the source for changes every (seconds)' },
		{ key: 'check_interval', label: 'Import the source in full every (seconds)' },
		{ key: 'max_downloads', label: 'Download cap: packages served at once' },
	];
	const err = h('div', { class: 'error' });
	async function load() {
		let cur;
		try {
			cur = await get('/api/v1/update/settings');
		} catch (e) {
			fill(el, h('p', { class: 'error' }, e.message));
			return;
		}
		const inputs = {};
		const save = async (body) => {
			fill(err);
			try {
				await call('PUT', '/api/v1/update/settings', body);
				toast('Update settings saved');
				load();
			} catch (e) {
				fill(err, e.message);
			}
		};
		fill(el, h('section', { class: 'panel', id: 'update-settings' },
			h('h2', {}, 'Source, schedule and download cap'),
			fields.map((f) => {
				inputs[f.key] = h('input', { id: `us-${f.key}`, value: cur[f.key],
					type: f.type || 'number', size: f.type ? 50 : 10 });
				return [h('label', { for: `us-${f.key}` }, f.label), h('div', { class: 'row' },
					inputs[f.key], h('span', { class: 'origin muted' },
						f.key in cur.set ? `set here (wardd.conf: ${cur.config[f.key]})` :
							'from wardd.conf'))];
			}),
			err,
			h('div', { class: 'row actions' },
				h('button', { class: 'write', id: 'save-update-settings', onclick: () => {
					const body = {};
					for (const f of fields) {
						const v = f.type ? inputs[f.key].value.trim() : Number(inputs[f.key].value);
						if (v !== cur[f.key])
							body[f.key] = v;
					}
					if (Object.keys(body).length)
						save(body);
				} }, 'Save'),
				Object.keys(cur.set).length ? h('button', { class: 'secondary write', onclick: () =>
					save(Object.fromEntries(Object.keys(cur.set).map((k) => [k, null]))) },
				'Back to wardd.conf\'s values') : null)));
	}
	load();
}

function sourceTable(el) {
	const list = h('tbody', {});
	const err = h('div', { class: 'error' });
	const add = (r = { range: '', url: '' }) => {
		const tr = h('tr', {},
			h('td', {}, h('input', { 'data-f': 'range', value: r.range,
				placeholder: '10.1.0.0/16 or 2001:db8::/32' })),
			h('td', {}, h('input', { 'data-f': 'url', value: r.url, size: 40,
				placeholder: 'https://mirror.example.com:8443' })),
			h('td', {}, h('button', { class: 'secondary write', onclick: () => tr.remove() },
				'x')));
		list.append(tr);
	};
	get('/api/v1/update-sources').then((r) => r.sources.forEach(add),
		(e) => fill(err, e.message));
	fill(el, h('section', { class: 'panel', id: 'source-table' },
		h('h2', {}, 'Update source table'),
		h('p', { class: 'muted' }, 'Agents in a range download from its source (checked in ' +
			'order); agents in none download from this server.'),
		h('table', {}, h('tr', {}, h('th', {}, 'IP range'), h('th', {}, 'Source'), h('th', {})),
			list),
		err,
		h('div', { class: 'row' },
			h('button', { class: 'secondary write', onclick: () => add() }, 'Add source'),
			h('button', { class: 'write', id: 'save-sources', onclick: async () => {
				fill(err);
				const sources = [...list.children].map((tr) => ({
					range: tr.querySelector('[data-f=range]').value.trim(),
					url: tr.querySelector('[data-f=url]').value.trim() }));
				try {
					await call('PUT', '/api/v1/update-sources', { sources });
					toast(`Update source table saved (${sources.length} entries)`);
				} catch (e) {
					fill(err, e.message);
				}
			} }, 'Save'))));
}

function domainPaths(node, path, out) {
	for (const d of node.domains) {
		const p = `${path}/${d.name}`;
		out.push(p);
		domainPaths(d, p, out);
	}
	return out;
}

export function show(main) {
	const status = h('div', {}, h('p', { class: 'muted' }, 'Loading...'));
	const settings = h('div', {});
	const sources = h('div', {});
	main.append(h('h1', {}, 'Updates'), status, settings, sources);
	settingsForm(settings);
	let domains = [];
	async function load(background) {
		try {
			const s = await get('/api/v1/update', background);
			const keep = document.getElementById('update-scope');
			const chosen = keep ? keep.value : 'root';
			renderStatus(status, s, domains);
			document.getElementById('update-scope').value = chosen;
		} catch (e) {
			if (e.status !== 401)
				fill(status, h('p', { class: 'error' }, e.message));
		}
	}
	get('/api/v1/tree').then((t) => { domains = domainPaths(t, '', []); load(); }, load);
	sourceTable(sources);
	const timer = setInterval(() => load(true), 5000);
	return () => clearInterval(timer);
}
