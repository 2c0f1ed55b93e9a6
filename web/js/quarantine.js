// quarantine.js -- Quarantine: the files in the agents' quarantines as
// they last reported them (GET /api/v1/quarantine), filtered by client,
// domain and state; restoring (overwrite, exclude from later scans) or
// deleting one queues a task for its agent, whose state is shown as it
// changes until the agent reports the item's new state.
import { call, get, query } from './api.js';
import { dialog, fill, fmtBytes, fmtTime, h, safePath, safeText, toast } from './dom.js';
import { domainSelect, table } from './lists.js';
import { argsOf, poller, taskState, unfinished } from './tasks.js';

const LIMIT = 1000;
// Seconds after a restore or delete ended during which the page asks again
// quickly for the item's new state, which the agent's inventory report
// brings apart from the task's end.
const SETTLE = 60;
const KINDS = { quarantine_restore: 'restore', quarantine_delete: 'delete' };

export function show(main) {
	const client = h('select', { id: 'q-client' }, h('option', { value: '' }, 'all clients'));
	const domain = domainSelect('q-domain');
	const state = h('select', { id: 'q-state' }, h('option', { value: '' }, 'any state'),
		['stored', 'restored', 'deleted'].map((s) => h('option', { value: s }, s)));
	const rows = h('tbody', { id: 'q-items' });
	const taskRows = h('tbody', { id: 'q-tasks' });
	const note = h('p', { class: 'muted' });
	const err = h('div', { class: 'error' });
	let tasks = [];   // the restore and delete tasks, newest first

	// The newest restore or delete task of an item.
	const taskOf = (it) => tasks.find((t) => t.client === it.client &&
		argsOf(t).item === it.id);

	function itemRow(it) {
		const t = taskOf(it);
		const busy = t && unfinished(t);
		const act = (label, fn, id) => h('button', { class: `secondary write`, id,
			disabled: busy, onclick: () => fn(it).catch((e) => toast(e.message, true)) }, label);
		return h('tr', { 'data-item': it.id, 'data-client': it.client },
			h('td', {}, `${it.hostname || ''} (${it.client})`),
			h('td', { class: 'qpath' }, safePath(it.path)),
			h('td', {}, it.names.map((n) => h('div', {}, safeText(n)))),
			h('td', {}, fmtBytes(it.size)),
			h('td', {}, h('span', { class: 'mono sha', title: it.sha256 },
				`${it.sha256.slice(0, 12)}...`)),
			h('td', {}, fmtTime(it.time)),
			h('td', {}, it.source),
			h('td', { 'data-col': 'state' }, h('span', { class: `pill q-${it.state}` }, it.state),
				it.central ? h('div', { class: 'muted' }, `central copy ${fmtBytes(it.central)}`) :
					null),
			h('td', { 'data-col': 'task' }, t ? [`${KINDS[t.kind]}, task ${t.id}: `,
				taskState(t)] : ''),
			h('td', {}, it.state === 'stored' ? h('div', { class: 'row' },
				act('Restore...', restoreDialog, `restore-${it.client}-${it.id}`),
				act('Delete...', deleteDialog, `delete-${it.client}-${it.id}`)) : null));
	}

	function taskRow(t) {
		const a = argsOf(t);
		return h('tr', { 'data-task': t.id },
			h('td', {}, t.id), h('td', {}, KINDS[t.kind]),
			h('td', {}, `${t.hostname || ''} (${t.client})`),
			h('td', { class: 'mono' }, safeText(a.item || '')),
			h('td', {}, [a.overwrite ? 'overwrite' : '', a.exclude ? 'exclude' : '']
				.filter((x) => x).join(', ')),
			h('td', {}, taskState(t)), h('td', {}, fmtTime(t.updated)),
			h('td', {}, t.who || ''));
	}

	async function load(background) {
		fill(err);
		// The API takes a client or a domain: a client chosen is the narrower.
		const f = client.value ? { client: client.value } : { domain: domain.value };
		const [q, r, d] = await Promise.all([
			get(`/api/v1/quarantine${query({ ...f, state: state.value, limit: LIMIT })}`,
				background),
			get(`/api/v1/tasks${query({ ...f, kind: 'quarantine_restore', limit: 50 })}`,
				background),
			get(`/api/v1/tasks${query({ ...f, kind: 'quarantine_delete', limit: 50 })}`,
				background)]);
		tasks = [...r.tasks, ...d.tasks].sort((x, y) => y.id - x.id);
		fill(rows, q.items.length ? q.items.map(itemRow) : h('tr', {}, h('td', { colspan: 10,
			class: 'muted' }, 'No quarantined file matches.')));
		fill(note, q.items.length >= LIMIT ? `The newest ${LIMIT} items; narrow the filters ` +
			'to see older ones.' : `${q.items.length} item(s).`);
		fill(taskRows, tasks.length ? tasks.slice(0, 50).map(taskRow) : h('tr', {},
			h('td', { colspan: 8, class: 'muted' }, 'None.')));
		const settling = q.items.some((it) => {
			const t = taskOf(it);
			return t && t.state === 'completed' && it.state === 'stored' &&
				Date.now() / 1000 - t.updated < SETTLE;
		});
		return settling || tasks.some(unfinished);
	}

	const poll = poller(async (background) => {
		try {
			return await load(background);
		} catch (e) {
			fill(err, e.message);
			return false;
		}
	});

	async function restoreDialog(it) {
		const overwrite = h('input', { type: 'checkbox', id: 'q-overwrite' });
		const exclude = h('input', { type: 'checkbox', id: 'q-exclude' });
		await dialog('Restore a quarantined file', [
			h('p', {}, 'Put back on ', h('b', {}, it.hostname || `client ${it.client}`), ':'),
			h('p', {}, safePath(it.path)),
			h('p', { class: 'muted' }, `Detected as ${it.names.map(safeText).join(', ')}. ` +
				'The agent decrypts it to its original path.'),
			h('label', { class: 'inline' }, overwrite, 'overwrite a file now at that path'),
			h('label', { class: 'inline' }, exclude, 'exclude it from later scans (its SHA-256)')],
		[{ label: 'Restore', class: 'danger', action: async () => {
			const r = await call('POST', '/api/v1/quarantine/restore', { client: it.client,
				item: it.id, overwrite: overwrite.checked, exclude: exclude.checked });
			toast(`Restore queued: task ${r.task}`);
			poll.now();
		} }]);
	}

	async function deleteDialog(it) {
		await dialog('Delete a quarantined file', [
			h('p', {}, 'Delete for good, on ', h('b', {}, it.hostname || `client ${it.client}`),
				', the quarantined copy of:'),
			h('p', {}, safePath(it.path)),
			h('p', { class: 'muted' }, 'It cannot be restored afterwards.')],
		[{ label: 'Delete', class: 'danger', action: async () => {
			const r = await call('POST', '/api/v1/quarantine/delete', { client: it.client,
				item: it.id });
			toast(`Delete queued: task ${r.task}`);
			poll.now();
		} }]);
	}

	for (const el of [client, domain, state])
		el.addEventListener('change', () => poll.now());
	get('/api/v1/clients').then((r) => {
		for (const c of r.clients.sort((a, b) => a.hostname.localeCompare(b.hostname)))
			client.append(h('option', { value: c.id }, `${c.hostname} (${c.id})`));
	}, () => {});
	main.append(h('h1', {}, 'Quarantine'),
		h('section', { class: 'panel' },
			h('p', { class: 'muted' }, 'Files the agents quarantined (encrypted on the ' +
				'endpoint), as each agent last reported its quarantine. Restoring or deleting ' +
				'one is a task for its agent, carried out when it is online.'),
			h('div', { class: 'row filters' }, client, domain, state,
				h('button', { class: 'secondary', onclick: () => poll.now() }, 'Refresh')),
			err,
			table('q-table', ['Client', 'Original path', 'Detected as', 'Size', 'SHA-256',
				'Quarantined', 'Found by', 'State', 'Task', ''], rows),
			note),
		h('section', { class: 'panel' }, h('h2', {}, 'Restore and delete tasks'),
			table('q-task-table', ['Task', 'Action', 'Client', 'Item', 'Options', 'State',
				'Changed', 'Asked by'], taskRows)));
	return () => poll.stop();
}
