// scans.js -- the agents page's protection parts: the real-time state of
// a client (its column and its counters), its last scan, Scan Now on
// clients or a domain (POST /api/v1/scans), and the scan tasks with their
// live progress and a Cancel for those unfinished.
import { call, get, query } from './api.js';
import { fill, fmtBytes, fmtCount, fmtTime, h, safePath, safeText, toast } from './dom.js';
import { argsOf, cancelTask, poller, progressText, taskState, taskTimes, unfinished } from
	'./tasks.js';

// A client's real-time state as its agent last reported it, for the list.
export function realtimeCell(rt) {
	if (!rt || !rt.state)
		return h('span', { class: 'muted', title: 'not reported by the agent' }, 'unknown');
	// On, and yet letting accesses through unscanned: failing.
	const failing = rt.state === 'on' && rt.unscanned_recent > 0;
	const text = failing ? `failing (${fmtCount(rt.unscanned_recent)} let through unscanned)` :
		rt.state === 'on' ? `on (${rt.mode || 'block'})` : rt.state;
	return h('span', { class: `rt-${failing ? 'failing' : rt.state}`, 'data-realtime': rt.state,
		title: rt.reason ? safeText(rt.reason) : text }, text);
}

const us = (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)} ms` : `${n} µs`);

// The counters of docs/protocol.md's "realtime" status, those known by
// name first; any others follow as they are.
const COUNTERS = [
	['events', 'events read'], ['cache_hits', 'answered from the cache'],
	['kernel_cache_marks', 'kernel cache marks'],
	['folder_marks', 'folders passed over by the kernel'],
	['folder_resets', 'kernel cache emptied (a folder moved)'], ['scans', 'files scanned'],
	['clean', 'clean'], ['detections', 'detections'], ['unverified', 'unverified'],
	['errors', 'scan errors'], ['denials', 'accesses denied'], ['timeouts', 'timeouts'],
	['excluded', 'excluded'], ['oversize', 'over the size limit'],
	['not_regular', 'not regular files'], ['empty', 'empty files'], ['dropped', 'dropped (backend full)'],
	['overflows', 'kernel queue overflows'], ['watchdog', 'allowed by the watchdog'],
	['queue', 'in the queue now'], ['queue_high', 'queue high-water mark'],
	['filesystems', 'filesystems marked'], ['mounts', 'mounts marked']];

function topTable(id, title, key, list) {
	if (!Array.isArray(list) || !list.length)
		return null;
	return [h('h3', {}, title), h('table', { id, class: 'toplist' },
		h('tr', {}, h('th', {}, key === 'exe' ? 'Program' : 'Path'), h('th', {}, 'Scans'),
			h('th', {}, 'Time scanning')),
		list.map((t) => h('tr', {}, h('td', {}, safePath(t[key] || '')),
			h('td', {}, fmtCount(t.scans)), h('td', {}, us(t.scan_us || 0)))))];
}

// The real-time part of a client's details.
export function realtimeDetail(rt) {
	if (!rt || !rt.state)
		return h('div', { id: 'realtime-detail' }, h('p', { class: 'muted' },
			'The agent has not reported its real-time scanning.'));
	const c = rt.counters || {};
	const known = new Set(COUNTERS.map(([k]) => k).concat(['latency_p50_us',
		'latency_p99_us', 'top_processes', 'top_paths']));
	const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
	return h('div', { id: 'realtime-detail' },
		h('dl', { class: 'kv' },
			kv('state', realtimeCell(rt)),
			rt.mode ? kv('mode', rt.mode === 'block' ? 'block (files are scanned before ' +
				'they open)' : 'detect (files are scanned after they open)') : null,
			rt.reason ? kv(rt.state === 'degraded' ? 'why not on the settings asked' :
				'why unavailable', h('span', { id: 'realtime-reason', class: 'bad' },
				safeText(rt.reason))) : null,
			'unscanned_recent' in rt ? kv('let through unscanned (last 5-10 min)',
				h('span', { id: 'realtime-unscanned', class: rt.unscanned_recent ? 'bad' : '' },
					fmtCount(rt.unscanned_recent))) : null),
		Object.keys(c).length ? h('dl', { class: 'kv counters', id: 'realtime-counters' },
			COUNTERS.filter(([k]) => k in c).map(([k, label]) => kv(label, fmtCount(c[k]))),
			'latency_p50_us' in c || 'latency_p99_us' in c ? kv('decision latency',
				`p50 ${us(c.latency_p50_us || 0)}, p99 ${us(c.latency_p99_us || 0)}`) : null,
			Object.entries(c).filter(([k, v]) => !known.has(k) && typeof v !== 'object')
				.map(([k, v]) => kv(safeText(k), safeText(v)))) : null,
		topTable('top-processes', 'Programs whose files took the most scanning', 'exe',
			c.top_processes),
		topTable('top-paths', 'Paths that took the most scanning', 'path', c.top_paths));
}

const SOURCES = { realtime: 'real time', scheduled: 'scheduled scan', scan_now: 'Scan Now',
	manual: 'ward-agent scan', clamd: 'clamd' };

// The agent's clamd service as its status tells it (docs/protocol.md).
export function clamdText(cl) {
	if (!cl || !cl.state)
		return 'off';
	const n = (k) => fmtCount(cl[k] || 0);
	return `${cl.state === 'on' ? 'on' : 'stopped by SHUTDOWN'}: ${n('requests')} requests, ` +
		`${n('found')} found, ${n('errors')} errors, ${n('unverified')} unverified, ` +
		`${n('cached')} answered from the cache`;
}

// A client's last scan, for people.
export function lastScanText(ls) {
	if (!ls)
		return 'none reported';
	const what = SOURCES[ls.source] || (ls.source ? safeText(ls.source) : 'scan');
	const task = ls.task ? ` (task ${ls.task})` : '';
	const when = ls.finished ? `${fmtTime(ls.started)} to ${fmtTime(ls.finished)}` :
		`started ${fmtTime(ls.started)}`;
	const counts = `${fmtCount(ls.files)} files, ${fmtBytes(ls.bytes || 0)}, ` +
		`${fmtCount(ls.detections)} detections`;
	return `${what}${task}: ${ls.state}, ${when}; ${counts}`;
}

// Paths typed one a line; [] for none.
function pathsOf(text) {
	return text.split('\n').map((s) => s.trim()).filter((s) => s);
}

// The Scan Now dialog's fields and what Apply sends: targets is
// [{label, scopes: [SCOPE...]}] (the selected clients, the domain in view).
export function scanNowFields(targets) {
	const target = h('select', { id: 'scan-target' }, targets.map((t, i) =>
		h('option', { value: i }, t.label)));
	const paths = h('textarea', { id: 'scan-paths', rows: 3,
		placeholder: 'one absolute path a line (none: each client\'s scan.paths)' });
	const cpu = h('select', { id: 'scan-cpu' },
		h('option', { value: '' }, 'as each client\'s scan.cpu'),
		h('option', { value: 'low' }, 'low (yield to other work)'),
		h('option', { value: 'normal' }, 'normal'));
	const progress = h('div', { class: 'muted' });
	const apply = async (each) => {
		const body = {};
		const p = pathsOf(paths.value);
		if (p.length)
			body.paths = p;
		if (cpu.value)
			body.cpu = cpu.value;
		const scopes = targets[Number(target.value)].scopes;
		const out = { tasks: [], refused: [], skipped: {} };
		const errors = await each(scopes, 4, async (scope) => {
			const r = await call('POST', '/api/v1/scans', { scope, ...body });
			out.tasks.push(...r.tasks);
			out.refused.push(...r.refused);
			for (const [k, n] of Object.entries(r.skipped || {}))
				out.skipped[k] = (out.skipped[k] || 0) + n;
		}, (done, all) => fill(progress, `${done} of ${all}`));
		if (errors.length === scopes.length)
			throw new Error(errors[0]);
		const skipped = Object.entries(out.skipped).map(([k, n]) => `${n} ${k}`).join(', ');
		toast(`Scan Now: ${out.tasks.length} task(s) queued` +
			(out.refused.length ? `; ${out.refused.length} refused ` +
				`(${out.refused[0].client}: ${out.refused[0].error})` : '') +
			(skipped ? `; skipped: ${skipped}` : '') +
			(errors.length ? `; ${errors.length} failed: ${errors[0]}` : ''),
		out.tasks.length === 0);
		return out;
	};
	return { fields: [h('label', {}, 'Scan'), target,
		h('label', {}, 'Paths'), paths, h('label', {}, 'Processor use'), cpu, progress], apply };
}

// A scan task's paths and processor use, as asked.
function scanArgs(a) {
	const paths = Array.isArray(a.paths) ? a.paths.map(safeText).join(', ') : 'scan.paths';
	return `${paths}; cpu ${a.cpu ? safeText(a.cpu) : 'as scan.cpu'}`;
}

// The panel of scan tasks of the domain in view (path; '/' is all),
// polled quickly while any is unfinished.
export function scanTasksPanel() {
	const rows = h('tbody', { id: 'scan-tasks' });
	const cancelling = new Set();
	let domain = '/';
	const render = (tasks) => fill(rows, tasks.length ? tasks.map((t) => h('tr', {
		'data-task': t.id, 'data-state': t.state },
	h('td', {}, t.id), h('td', {}, `${t.hostname || ''} (${t.client})`),
	h('td', { class: 'muted' }, scanArgs(argsOf(t))),
	h('td', {}, taskState(t, cancelling.has(t.id))),
	h('td', { 'data-col': 'progress' }, progressText(t)),
	h('td', { class: 'muted' }, taskTimes(t)),
	h('td', {}, unfinished(t) ? h('button', { class: 'secondary write',
		id: `cancel-${t.id}`, disabled: cancelling.has(t.id), onclick: async () => {
			const r = await cancelTask(t.id);
			if (r && r.state === 'cancelling')
				cancelling.add(t.id);
			poll.now();
		} }, 'Cancel') : null))) : h('tr', {}, h('td', { colspan: 7, class: 'muted' },
		'No scan task.')));
	const poll = poller(async (background) => {
		const r = await get(`/api/v1/tasks${query({ kind: 'scan', limit: 20,
			domain: domain === '/' ? '' : domain })}`, background);
		for (const id of [...cancelling])
			if (!r.tasks.some((t) => t.id === id && unfinished(t)))
				cancelling.delete(id);
		render(r.tasks);
		return r.tasks.some(unfinished);
	});
	const el = h('section', { class: 'panel', id: 'scan-panel' },
		h('h2', {}, 'Scan tasks'),
		h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Client'),
			h('th', {}, 'What'), h('th', {}, 'State'), h('th', {}, 'Progress'), h('th', {}, 'When'),
			h('th', {}))), rows));
	return { el, stop: poll.stop,
		show: (path) => { domain = path; poll.now(); } };
}
