// backups.js -- Backups: the archives wardd keeps in backup.dir, the
// schedule and the last outcome; an administrator backs up now.
import { call, get } from './api.js';
import { fill, fmtAgo, fmtBytes, fmtTime, h, showing, toast } from './dom.js';

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	const state = h('div', { id: 'backup-state' });
	const body = h('tbody', { id: 'backup-list' });
	const now = h('button', { id: 'backup-now', class: 'write' }, 'Back up now');
	let timer = null;
	const load = async () => {
		let b;
		try {
			b = await get('/api/v1/backups');
		} catch (e) {
			fill(err, e.message);
			return;
		}
		const last = b.last;
		fill(state,
			h('p', {}, 'Archives go to ', h('code', {}, b.dir), `; the ${b.keep} newest are kept.`),
			h('p', {}, 'Schedule: ', b.schedule ? `${b.schedule} (next ${fmtTime(b.next)})` :
				'none (backup.schedule): only when asked.'),
			h('p', { id: 'backup-last' }, 'Last backup: ', !last ? 'none since wardd started' :
				last.ok ? `${fmtTime(last.time)} (${fmtAgo(last.time)}) by ${last.by}, ` +
					`${fmtBytes(last.bytes)} in ${last.seconds.toFixed(1)} s` :
					h('span', { class: 'error' }, `${fmtTime(last.time)} by ${last.by} failed: ` +
						last.error)),
			b.running ? h('p', { class: 'muted' }, 'A backup is running.') : null);
		now.disabled = b.running;
		fill(body, b.archives.length ? b.archives.map((a) => h('tr', { 'data-archive': a.name },
			h('td', {}, a.name), h('td', {}, fmtTime(a.time)), h('td', {}, fmtBytes(a.size)))) :
			h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No archive yet.')));
	};
	now.addEventListener('click', () => showing(err, async () => {
		now.disabled = true;
		const done = call('POST', '/api/v1/backups');
		load();
		const r = await done;
		toast(`Backed up to ${r.archive}`);
		load();
	}));
	main.append(h('h1', {}, 'Backups'), h('section', { class: 'panel', id: 'backups' },
		h('p', { class: 'muted' }, 'An archive holds the database, the keys, the packages and ' +
			'the configuration, encrypted with backup.passphrase_file. Restore one with ' +
			'wardd restore on a stopped server.'),
		state, h('div', { class: 'row actions' }, now), err,
		h('table', {}, h('tr', {}, h('th', {}, 'Archive'), h('th', {}, 'Made'),
			h('th', {}, 'Size')), body)));
	load();
	timer = setInterval(load, 5000);
	return () => clearInterval(timer);
}
