// sps.js -- Smart protection: the source lists smart-scan agents use
// (the standard list and lists by IP range), the status of each source,
// and the warnings about agents that cannot reach a list's sources by
// address family.
import { call, get } from './api.js';
import { fill, fmtAgo, h, toast } from './dom.js';

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

function serversTable(el, integrated, servers) {
	fill(el, h('section', { class: 'panel', id: 'sps-servers' },
		h('h2', {}, 'Smart protection servers'),
		h('table', {},
			h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'Names'), h('th', {}, 'State'),
				h('th', {}, 'Pattern'), h('th', {}, 'Requests'), h('th', {}, 'Latency p99'),
				h('th', {}, 'Last seen')),
			h('tr', {}, h('td', {}, 'integrated (wardd)'), h('td', {}, ''),
				h('td', { class: integrated ? 'ok' : 'muted' }, integrated ? 'running' : 'disabled'),
				h('td', {}, integrated && integrated.version ?
					`${integrated.version} (${integrated.entries} entries)` : ''),
				h('td', {}, integrated ? integrated.requests : ''),
				h('td', {}, integrated ? `${(integrated.latency_us.p99 / 1000).toFixed(2)} ms` : ''),
				h('td', {}, '')),
			servers.map((s) => h('tr', { 'data-sps': s.hostname },
				h('td', {}, s.hostname), h('td', { class: 'mono' }, (s.names || []).join(', ')),
				h('td', { class: s.state === 'online' ? 'ok' : 'bad' }, s.state),
				h('td', {}, s.status && s.status.version ?
					`${s.status.version} (${s.status.entries} entries)` : 'none yet'),
				h('td', {}, s.status ? s.status.requests : ''),
				h('td', {}, s.status && s.status.latency_us ?
					`${(s.status.latency_us.p99 / 1000).toFixed(2)} ms` : ''),
				h('td', {}, fmtAgo(s.last_seen))))),
		h('p', { class: 'muted' }, 'A ward-sps joins with `ward-sps enroll --bundle FILE ' +
			'--name HOST` and the enrollment bundle of this server.')));
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
			serversTable(servers, o.sps.integrated, sv.servers);
		} catch (e) {
			if (e.status !== 401)
				fill(lists, h('p', { class: 'error' }, e.message));
		}
	}
	load();
}
