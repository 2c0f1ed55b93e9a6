// chart.js -- the dashboard's chart of detections over time by the action
// taken, drawn as SVG with DOM calls from the event log's detections
// (GET /api/v1/logs?kind=detection, each with its detail).
import { get, query } from './api.js';
import { fill, fmtCount, h, svg } from './dom.js';

const LIMIT = 10000;   // detections fetched for one chart
export const ACTIONS = [
	['quarantine', 'quarantined', '#1f5f8b'], ['delete', 'deleted', '#b42318'],
	['rename', 'renamed', '#c27c0e'], ['pass', 'passed', '#8a94a0'],
	['deny', 'denied (block)', '#6b2fa0'], ['failed', 'action failed', '#3b0a06'],
	['none', 'no action reported', '#c9d1d8']];
const RANGES = { day: { span: 86400, step: 3600, label: 'last 24 hours' },
	week: { span: 7 * 86400, step: 6 * 3600, label: 'last 7 days' },
	month: { span: 30 * 86400, step: 86400, label: 'last 30 days' } };

// What was done about a detection in the end: the second action when the
// first failed and the second worked, "failed" when neither did.
export function outcome(d) {
	if (!d || !d.action)
		return 'none';
	if (d.action_result !== 'failed')
		return d.action;
	return d.second_action && d.second_result === 'ok' ? d.second_action : 'failed';
}

// The chart of events (detections of the log, each with its detail) in
// range (a key of RANGES) up to now (Unix seconds), and the totals by
// outcome of those in it.
export function draw(events, range, now) {
	const r = RANGES[range];
	const n = Math.ceil(r.span / r.step);
	const end = Math.ceil(now / r.step) * r.step;
	const start = end - n * r.step;
	const buckets = Array.from({ length: n }, () => ({}));
	const totals = {};
	for (const e of events) {
		const i = Math.floor((e.time - start) / r.step);
		if (i < 0 || i >= n)
			continue;
		const a = outcome(e.detail);
		buckets[i][a] = (buckets[i][a] || 0) + 1;
		totals[a] = (totals[a] || 0) + 1;
	}
	const W = 1000, H = 220, L = 40, B = 24, T = 8;
	const max = Math.max(1, ...buckets.map((b) => Object.values(b).reduce((x, y) => x + y, 0)));
	const top = max <= 4 ? max : Math.ceil(max / 4) * 4;
	const bw = (W - L - 8) / n;
	const y = (v) => T + (H - T - B) * (1 - v / top);
	const label = (t) => {
		const d = new Date(t * 1000);
		return r.step < 86400 && range === 'day' ? `${String(d.getHours()).padStart(2, '0')}:00` :
			`${d.getMonth() + 1}/${d.getDate()}`;
	};
	const every = Math.ceil(n / 8);
	const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
		id: 'detections-chart', 'aria-label': `detections by action, ${r.label}` },
	[0, top / 2, top].map((v) => [
		svg('line', { x1: L, x2: W - 8, y1: y(v), y2: y(v), stroke: '#e3e7eb' }),
		svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtCount(v))]),
	buckets.map((b, i) => {
		let acc = 0;
		const x = L + i * bw + 1;
		return [ACTIONS.filter(([a]) => b[a]).map(([a, words, color]) => {
			const r0 = y(acc), r1 = y(acc + b[a]);
			acc += b[a];
			return svg('rect', { x, y: r1, width: Math.max(1, bw - 2), height: r0 - r1,
				fill: color, 'data-action': a },
			svg('title', {}, `${label(start + i * r.step)}: ${b[a]} ${words}`));
		}), i % every === 0 ? svg('text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle' },
			label(start + i * r.step)) : null];
	}));
	return { chart, totals };
}

// The chart's panel; refresh() fetches the detections again.
export function detectionsChart() {
	const range = h('select', { id: 'chart-range' }, Object.entries(RANGES).map(([k, v]) =>
		h('option', { value: k, selected: k === 'week' }, v.label)));
	const body = h('div', {});
	const el = h('section', { class: 'panel', id: 'card-chart' },
		h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'Detections by action'), range),
		body);
	async function refresh(background) {
		const now = Math.floor(Date.now() / 1000);
		const since = now - RANGES[range.value].span;
		let r;
		try {
			r = await get(`/api/v1/logs${query({ kind: 'detection', since, limit: LIMIT })}`,
				background);
		} catch (e) {
			if (e.status !== 401)
				fill(body, h('p', { class: 'error' }, e.message));
			return;
		}
		const { chart, totals } = draw(r.events, range.value, now);
		fill(body, chart,
			h('div', { class: 'legend', id: 'chart-legend' }, ACTIONS.filter(([a]) =>
				a !== 'none' || totals.none).map(([a, words, color]) => {
				const sw = h('i', {});
				sw.style.background = color;
				return h('span', { 'data-total': a }, sw, `${words}: ${fmtCount(totals[a])}`);
			})),
			r.events.length >= LIMIT ? h('p', { class: 'muted' }, `The newest ${LIMIT} ` +
				'detections of the period only.') : null);
	}
	range.addEventListener('change', () => refresh(false));
	return { el, refresh };
}
