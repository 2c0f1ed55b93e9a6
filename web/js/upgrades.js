// upgrades.js -- Agent upgrades: the agent packages of each platform, the
// rollout (started, paused, resumed, cancelled here), and the agents it
// does not reach: held back by agent.upgrade, on a platform no package
// serves, failed (their version came back, with the reason), older than
// this server accepts.
import { call, get } from './api.js';
import { field, fill, fmtBytes, fmtTime, h, pill, showing, toast } from './dom.js';

const stateText = {
	in_progress: 'upgrading', restart_pending: 'installed, waits for a restart', failed: 'failed: its version came back',
	prevented: 'held back (agent.upgrade prevent)', unsupported: 'no package for its platform',
	manual: 'installed from source: upgraded by hand', offline: 'offline: offered when it comes back',
	behind: 'a newer package is served',
};

function packagesTable(packages) {
	return h('table', { id: 'upgrade-packages' },
		h('tr', {}, h('th', {}, 'Platform'), h('th', {}, 'Version'), h('th', {}, 'File'),
			h('th', {}, 'Size'), h('th', {}, 'Applying needs')),
		packages.length ? packages.map((p) => h('tr', { 'data-version': p.version },
			h('td', {}, p.platform), h('td', {}, p.version), h('td', {}, p.file),
			h('td', {}, fmtBytes(p.size)), h('td', {}, p.restart === 'none' ? 'nothing' :
				`a restart of the ${p.restart === 'host' ? 'host' : 'agent'}`))) :
			h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No agent package names its ' +
				'platform (make deb writes Ward-Platform).')));
}

function rolloutPanel(r, reload) {
	const err = h('div', { class: 'error', role: 'alert' });
	const act = (path, label) => h('button', { class: 'secondary write',
		id: `upgrade-${label.toLowerCase()}`, onclick: () => showing(err, async () => {
			await call('POST', `/api/v1/agent-upgrade/${path}`);
			toast(`Rollout ${label.toLowerCase() === 'cancel' ? 'cancelled' :
				`${label.toLowerCase()}d`}`);
			reload();
		}) }, label);
	if (!r)
		return h('p', { class: 'muted', id: 'upgrade-rollout' }, 'No rollout yet.');
	const c = r.counts;
	return h('div', { id: 'upgrade-rollout' },
		h('p', {}, pill(r.state), ` ${r.version} to ${r.scope}, ${r.batch} at a time, ` +
			`started ${fmtTime(r.started)} by ${r.by}`,
			r.ended ? `, ended ${fmtTime(r.ended)}` : '', '.'),
		r.reason ? h('p', { class: r.state === 'paused' ? 'error' : 'muted' }, r.reason) : null,
		h('p', { id: 'upgrade-counts' }, `Upgraded ${c.upgraded}, upgrading ${c.in_progress}, ` +
			`waiting for a restart ${c.restart_pending}, failed ${c.failed}, ` +
			`to offer ${c.pending}, offline ${c.offline}, held back ` +
			`${c.prevented}, unsupported ${c.unsupported}, upgraded by hand ${c.manual}.`),
		h('div', { class: 'row actions' },
			r.state === 'running' ? act('pause', 'Pause') : null,
			r.state === 'paused' ? act('resume', 'Resume') : null,
			r.state === 'running' || r.state === 'paused' ? act('cancel', 'Cancel') : null),
		err);
}

function startForm(versions, reload) {
	const version = h('select', { id: 'upgrade-version' },
		versions.map((v) => h('option', { value: v }, v)));
	const scope = h('input', { id: 'upgrade-scope', value: '/' });
	const batch = h('input', { id: 'upgrade-batch', type: 'number', min: 1, max: 10000,
		value: 50 });
	const failures = h('input', { id: 'upgrade-failures', type: 'number', min: 0, value: 10 });
	const win = h('input', { id: 'upgrade-window', type: 'number', min: 10, max: 3600,
		value: 60 });
	const err = h('div', { class: 'error', role: 'alert' });
	const form = h('form', { class: 'write', id: 'upgrade-form' },
		h('div', { class: 'row' }, field('Version', version), field('Domain', scope),
			field('Batch', batch), field('Pause after failures (0: never)', failures),
			field('Window (s)', win)),
		err, h('div', { class: 'row actions' }, h('button', { type: 'submit',
			id: 'upgrade-start' }, 'Roll out')));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		showing(err, async () => {
			await call('POST', '/api/v1/agent-upgrade', { version: version.value,
				scope: scope.value, batch: Number(batch.value),
				max_failures: Number(failures.value), window: Number(win.value) });
			toast(`Rolling ${version.value} out`);
			reload();
		});
	});
	return form;
}

function agentRow(a) {
	return h('tr', { 'data-client': a.client, 'data-state': a.state },
		h('td', {}, a.hostname), h('td', {}, a.version), h('td', {}, a.platform),
		h('td', {}, pill(a.state.replace('_', '-')), ` ${stateText[a.state] || a.state}`,
			a.reason && a.reason !== stateText[a.state] ?
				h('div', { class: 'muted' }, a.reason) : null));
}

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	const rollout = h('div', {}), form = h('div', {}), packages = h('div', {});
	const agents = h('tbody', { id: 'upgrade-agents' }), outdated = h('div', {});
	let versions = '';
	const load = () => showing(err, async () => {
		const u = await get('/api/v1/agent-upgrade');
		const list = [...new Set(u.packages.map((p) => p.version))];
		fill(rollout, rolloutPanel(u.rollout, load));
		// The form is made again only when the versions change: a refresh
		// keeps what is being typed.
		if (list.join(' ') !== versions) {
			versions = list.join(' ');
			fill(form, list.length ? startForm(list, load) : null);
			fill(packages, packagesTable(u.packages));
		}
		fill(agents, u.agents.length ? u.agents.map(agentRow) :
			h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'None.')));
		fill(outdated, u.outdated.length ? h('p', { class: 'error', id: 'upgrade-outdated' },
			`Older than this server accepts (${u.min_version}): ` +
			u.outdated.map((o) => `${o.hostname} (${o.version})`).join(', ')) : null);
	});
	main.append(h('h1', {}, 'Agent upgrades'), h('p', { class: 'muted' }, 'A rollout offers ' +
		'a version to the online agents of a domain, a batch at a time. An agent runs the ' +
		'new version on trial: if it crashes or does not reach this server within the ' +
		'window, the agent goes back to its version by itself and says why.'), err,
		h('section', { class: 'panel' }, h('h2', {}, 'Rollout'), rollout, form),
		h('section', { class: 'panel' }, h('h2', {}, 'Agents it does not reach'),
			h('table', {}, h('tr', {}, h('th', {}, 'Agent'), h('th', {}, 'Version'),
				h('th', {}, 'Platform'), h('th', {}, 'State')), agents), outdated),
		h('section', { class: 'panel' }, h('h2', {}, 'Packages'), packages));
	load();
	const timer = setInterval(load, 5000);
	return () => clearInterval(timer);
}
