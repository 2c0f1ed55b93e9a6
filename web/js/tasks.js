// tasks.js -- what the pages show of the agents' tasks (docs/api.md,
// GET /api/v1/tasks): their state, a scan's progress, cancelling, and a
// poller that asks again quickly while any task is unfinished.
import { call } from './api.js';
import { fmtBytes, fmtCount, fmtTime, h, safeText, toast } from './dom.js';

const FAST = 2000;    // ms between polls while a task is unfinished
const SLOW = 15000;   // ms otherwise

export function unfinished(t) {
	return ['queued', 'delivered', 'running'].includes(t.state);
}

export function argsOf(t) {
	if (typeof t.args !== 'string')
		return t.args || {};
	try {
		return JSON.parse(t.args);
	} catch {
		return {};
	}
}

// The state, with a failed task's error (escaped: it is the agent's text).
export function taskState(t, cancelling) {
	return h('span', { 'data-task-state': t.state },
		h('span', { class: `pill task-${t.state}` }, cancelling && unfinished(t) ?
			`${t.state}, cancelling` : t.state),
		t.error ? h('span', { class: 'bad' }, ` ${safeText(t.error)}`) : null);
}

export function progressText(t) {
	const p = t.progress || {};
	if (p.files === undefined && p.bytes === undefined && p.detections === undefined)
		return '';
	return `${fmtCount(p.files)} files, ${fmtBytes(p.bytes || 0)}, ` +
		`${fmtCount(p.detections)} detections`;
}

export function taskTimes(t) {
	if (t.finished)
		return `finished ${fmtTime(t.finished)}`;
	if (t.started)
		return `started ${fmtTime(t.started)}`;
	return `queued ${fmtTime(t.created)}`;
}

// Cancels task id; resolves to the server's answer (state "cancelled" or
// "cancelling"), or undefined after a toast saying why not.
export async function cancelTask(id) {
	try {
		const r = await call('POST', '/api/v1/tasks/cancel', { id });
		toast(r.state === 'cancelled' ? `Task ${id} cancelled` :
			`Task ${id}: its agent was told to cancel it`);
		return r;
	} catch (e) {
		toast(`Task ${id}: ${e.message}`, true);
		return undefined;
	}
}

// Calls load() (which resolves true while something is unfinished) now and
// again: every FAST ms while it says so, every SLOW ms otherwise. Returns
// { now(): load again at once, stop() }.
export function poller(load) {
	let timer = null, stopped = false, gen = 0;
	async function run(background) {
		const mine = ++gen;   // a run started meanwhile sets the next timer
		clearTimeout(timer);
		let busy = false;
		try {
			busy = await load(background);
		} catch (e) {
			if (e.status !== 401)
				toast(e.message, true);
		}
		if (!stopped && mine === gen)
			timer = setTimeout(() => run(true), busy ? FAST : SLOW);
	}
	run(false);
	return { now: () => run(false), stop: () => { stopped = true; clearTimeout(timer); } };
}
