// dashboard.js -- the fleet at a glance, from GET /api/v1/overview,
// refreshed every 10 seconds.
import { call, get } from './api.js';
import { dialog, h, fill, fmtAgo, fmtTime, fmtDuration, safeText, toast } from './dom.js';
import { detectionsChart } from './chart.js';

// The queued deliveries of settings, with cancelling them.
async function queueDialog() {
	const q = await get('/api/v1/notify/queue');
	await dialog('Notification queue', [
		h('p', { class: 'muted' }, `${q.queue.length} queued, ${q.in_flight} sent and waiting ` +
			'for acknowledgement. Cancelled deliveries are not sent; the agents get their ' +
			'settings with the next change.'),
		q.queue.length ? h('table', { id: 'queue' }, h('tr', {}, h('th', {}, 'Agent'),
			h('th', {}, 'Settings version'), h('th', {}, 'Attempts'), h('th', {}, 'Next try')),
		q.queue.slice(0, 200).map((d) => h('tr', {}, h('td', {}, `${d.hostname} (${d.client})`),
			h('td', {}, d.version), h('td', {}, d.attempts),
			h('td', {}, d.next_attempt === null ? 'when it reconnects' :
				fmtTime(d.next_attempt))))) : null], q.queue.length ? [{
		label: 'Cancel all', class: 'danger write', action: async () => {
			const r = await call('DELETE', '/api/v1/notify/queue');
			toast(`${r.cancelled} queued deliveries cancelled`);
		} }] : []);
}

function counts(obj, order) {
	return h('table', {}, order.map((k) => h('tr', {},
		h('td', {}, k), h('td', { class: 'big-cell', 'data-count': k }, obj[k] || 0))));
}

function bar(parts) {
	const total = parts.reduce((n, p) => n + p.n, 0) || 1;
	return h('div', { class: 'bar' }, parts.map((p) => {
		const s = h('span', { class: p.cls, title: `${p.label}: ${p.n}` });
		s.style.width = `${(100 * p.n) / total}%`;
		return s;
	}));
}

function render(el, o, chart) {
	const a = o.agents;
	const outdated = o.components.reduce((n, c) => n + c.agents.outdated + c.agents.missing, 0);
	const integ = o.sps.integrated;
	fill(el,
		h('h1', {}, 'Dashboard'),
		h('div', { class: 'cards' },
			h('section', { class: 'panel', id: 'card-states' },
				h('h2', {}, 'Agents by connection state'),
				h('div', { class: 'big' }, a.total),
				bar([{ n: a.states.online, cls: 'b-ok', label: 'online' },
					{ n: a.states.roaming + a.states.offline, cls: 'b-warn',
						label: 'offline or roaming' },
					{ n: a.states.inactive, cls: 'b-bad', label: 'inactive' }]),
				counts(a.states, ['online', 'offline', 'roaming', 'inactive']),
				a.moved ? h('p', { class: 'muted', id: 'moved-count' },
					`${a.moved} moved to other servers (not counted)`) : null),
			h('section', { class: 'panel', id: 'card-methods' },
				h('h2', {}, 'Agents by scan method'),
				counts(a.methods, ['conventional', 'smart', 'unknown']),
				h('p', { class: 'muted' }, '"unknown": not yet reported by the agent.')),
			h('section', { class: 'panel', id: 'card-queue' },
				h('h2', {}, 'Notification queue'),
				h('div', { class: 'big' }, o.queued),
				h('p', { class: 'muted' }, 'settings deliveries waiting for agents'),
				h('div', { class: 'row' }, h('button', { class: 'secondary', id: 'view-queue',
					onclick: () => queueDialog().catch((e) => toast(e.message, true)) },
				'View...'), h('a', { href: '#/logs/delivery' }, 'Delivery log'))),
			h('section', { class: 'panel', id: 'card-server' },
				h('h2', {}, 'Server'),
				h('dl', { class: 'kv' },
					h('dt', {}, 'wardd'), h('dd', { class: 'ok' }, `${o.server.version}, running`),
					h('dt', {}, 'up for'), h('dd', {}, fmtDuration(Math.max(60,
						Math.round(o.server.uptime / 60) * 60))),
					h('dt', {}, 'last import'), h('dd', {}, o.update.last_import ?
						h('span', { class: o.update.last_import.ok ? 'ok' : 'bad' },
							`${fmtAgo(o.update.last_import.time)}: ` +
							o.update.last_import.message) : 'none yet'),
					h('dt', {}, 'downloads'), h('dd', {},
						`${o.update.downloads} now (cap ${o.update.max_downloads})`)),
				o.server.warnings.map((w) => h('p', { class: 'warn' }, w)))),
		h('section', { class: 'panel', id: 'card-components' },
			h('h2', {}, 'Components'),
			h('p', { class: outdated ? 'warn' : 'ok' }, outdated ?
				`${outdated} agent(s) out of date` : 'Every agent that reported is up to date.'),
			h('table', {},
				h('tr', {}, h('th', {}, 'Component'), h('th', {}, 'Version'),
					h('th', {}, 'Agents current'), h('th', {}, 'Out of date'),
					h('th', {}, 'Not installed')),
				o.components.map((c) => h('tr', {},
					h('td', {}, c.title), h('td', {}, c.version || 'not built'),
					h('td', {}, c.name === 'smart-pattern' ? '(server side)' : c.agents.current),
					h('td', { class: c.agents.outdated ? 'warn' : '' },
						c.name === 'smart-pattern' ? '' : c.agents.outdated),
					h('td', { class: c.agents.missing ? 'warn' : '' },
						c.name === 'smart-pattern' ? '' : c.agents.missing))))),
		chart.el,
		h('div', { class: 'cards' },
			h('section', { class: 'panel', id: 'card-detections' },
				h('h2', {}, 'Recent detections'),
				o.detections.length ? h('table', {}, o.detections.map((d) => h('tr', {},
					h('td', { class: 'muted' }, fmtTime(d.time)),
					h('td', {}, d.hostname || ''), h('td', {}, safeText(d.message))))) :
					h('p', { class: 'muted' }, 'None.'),
				h('a', { href: '#/logs/detection' }, 'All detections')),
			h('section', { class: 'panel', id: 'card-sps' },
				h('h2', {}, 'Smart protection servers'),
				h('table', {},
					h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'State'),
						h('th', {}, 'Pattern')),
					integ ? h('tr', {}, h('td', {}, 'integrated (wardd)'),
						h('td', { class: integ.version ? 'ok' : 'warn' },
							integ.version ? 'serving' : 'no pattern yet'),
						h('td', {}, integ.version ? `${integ.version} (${integ.entries} entries)` :
							'')) : h('tr', {}, h('td', {}, 'integrated'),
						h('td', { class: 'muted' }, 'disabled'), h('td', {})),
					o.sps.servers.map((s) => h('tr', {}, h('td', {}, s.hostname),
						h('td', { class: s.state === 'online' ? 'ok' : 'bad' }, s.state),
						h('td', {}, s.status && s.status.version ?
							`${s.status.version} (${s.status.entries} entries)` : '')))),
				h('a', { href: '#/smart' }, 'Smart protection'))));
}

export function show(main) {
	const el = h('div', { id: 'dashboard' }, h('p', { class: 'muted' }, 'Loading...'));
	main.append(el);
	let stopped = false;
	const chart = detectionsChart();
	async function load(background) {
		try {
			render(el, await get('/api/v1/overview', background), chart);
		} catch (e) {
			if (e.status !== 401)
				fill(el, h('h1', {}, 'Dashboard'), h('p', { class: 'error' }, e.message));
		}
	}
	load();
	chart.refresh(false);
	const timer = setInterval(() => { if (!stopped) load(true); }, 10000);
	// The chart reads up to 10,000 events: once a minute is enough.
	const slow = setInterval(() => { if (!stopped) chart.refresh(true); }, 60000);
	return () => { stopped = true; clearInterval(timer); clearInterval(slow); };
}
