// logs.js -- Logs: system events, connection verification, notification
// deliveries and detections, filtered by kind, time, agent and domain,
// newest first, a page at a time; exported as CSV by the same query.
import { get, query } from './api.js';
import { fill, fmtTime, h, safeText } from './dom.js';
import { domainSelect, table } from './lists.js';

const PAGE = 200;

// The input's local time in seconds since the epoch; an upper bound takes
// the whole minute it names.
function seconds(input, end) {
	return input.value ? String(Math.floor(new Date(input.value).getTime() / 1000) +
		(end ? 59 : 0)) : '';
}

export function show(main, args) {
	const kind = h('select', { id: 'log-kind' }, h('option', { value: '' }, 'all kinds'),
		['system', 'verify', 'delivery', 'detection', 'task'].map((k) =>
			h('option', { value: k, selected: k === args[0] }, k)));
	const since = h('input', { id: 'log-since', type: 'datetime-local' });
	const until = h('input', { id: 'log-until', type: 'datetime-local' });
	const agent = h('input', { id: 'log-agent', placeholder: 'host name or id', size: 16 });
	const domain = domainSelect('log-domain');
	const rows = h('tbody', {});
	const err = h('div', { class: 'error' });
	const more = h('button', { class: 'secondary', id: 'log-more' }, 'Older events');
	const csv = h('a', { id: 'log-csv', href: '#', download: 'ward-events.csv' }, 'Export CSV');
	let clients = null;   // host name -> id, fetched when first needed
	let last = 0;

	async function filter() {
		const f = { kind: kind.value, since: seconds(since), until: seconds(until, true),
			domain: domain.value };
		const a = agent.value.trim();
		if (/^\d+$/.test(a)) {
			f.client = a;
		} else if (a) {
			// Fetched again when a name is not there: agents come and go.
			if (!clients || !clients.has(a.toLowerCase())) {
				clients = new Map();
				for (const c of (await get('/api/v1/clients')).clients) {
					const ids = clients.get(c.hostname.toLowerCase()) || [];
					clients.set(c.hostname.toLowerCase(), [...ids, c.id]);
				}
			}
			const ids = clients.get(a.toLowerCase());
			if (!ids)
				throw new Error(`no agent with host name ${a}`);
			if (ids.length > 1)
				throw new Error(`${ids.length} agents are named ${a} (ids ` +
					`${ids.join(', ')}): enter the id`);
			f.client = ids[0];
		}
		return f;
	}

	async function load(older) {
		fill(err);
		try {
			const f = await filter();
			csv.href = `/api/v1/logs${query({ ...f, limit: 100000, format: 'csv' })}`;
			const r = await get(`/api/v1/logs${query({ ...f, limit: PAGE,
				before: older ? last : '' })}`);
			if (!older)
				rows.replaceChildren();
			for (const e of r.events)
				rows.append(h('tr', { 'data-kind': e.kind },
					h('td', { class: 'muted' }, fmtTime(e.time)), h('td', {}, e.kind),
					h('td', {}, e.hostname ? `${e.hostname} (${e.client})` : ''),
					h('td', {}, e.domain || ''), h('td', {}, safeText(e.message))));
			if (r.events.length)
				last = r.events[r.events.length - 1].id;
			more.disabled = r.events.length < PAGE;
			if (!older && !r.events.length)
				rows.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' },
					'No events match.')));
		} catch (e) {
			csv.removeAttribute('href');   // never an export of another filter
			fill(err, e.message);
		}
	}

	more.addEventListener('click', () => load(true));
	for (const el of [kind, since, until, domain])
		el.addEventListener('change', () => load(false));
	agent.addEventListener('change', () => load(false));
	main.append(h('h1', {}, 'Logs'),
		h('section', { class: 'panel' },
			h('div', { class: 'row filters' }, kind, h('span', { class: 'muted' }, 'from'), since,
				h('span', { class: 'muted' }, 'to'), until, agent, domain,
				h('button', { onclick: () => load(false) }, 'Show'), csv),
			err,
			table('log-table', ['Time', 'Kind', 'Agent', 'Domain', 'Event'], rows),
			more));
	load(false);
}
