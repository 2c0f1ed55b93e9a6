// deploy.js -- Deployment: the one-line command that installs, enrolls and
// starts the agent on a host, the agent packages wardd serves, and the
// deployments in progress (each from its script's download to its enrolled
// agent) with the ended ones.
import { call, get } from './api.js';
import { download, field, fill, fmtAgo, fmtBytes, fmtTime, h, pill, showing, toast }
	from './dom.js';

function commandForm(onMade) {
	const domain = h('input', { id: 'deploy-domain', placeholder: 'agents.default_domain',
		autocomplete: 'off' });
	const days = h('input', { id: 'deploy-days', type: 'number', min: 1, max: 3650,
		value: 30 });
	const uses = h('input', { id: 'deploy-uses', type: 'number', min: 0, value: 0 });
	const err = h('div', { class: 'error', role: 'alert' });
	const out = h('div', { id: 'deploy-command' });
	const form = h('form', { class: 'panel', id: 'deploy-form' },
		h('h2', {}, 'Install agents'),
		h('p', { class: 'muted' }, 'Makes an enrollment token for a domain and the command ' +
			'that installs the agent with it: run the command as root on each host, with ' +
			'this server\'s CA certificate saved beside it as ca.crt.'),
		field('Domain', domain), field('Valid for (days)', days),
		field('Agents it may enroll (0: no cap)', uses), err,
		h('div', { class: 'row actions' }, h('button', { type: 'submit', class: 'write',
			id: 'deploy-make' }, 'Make the command')), out);
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		showing(err, async () => {
			const body = { days: Number(days.value), max_uses: Number(uses.value) };
			if (domain.value.trim())
				body.domain = domain.value.trim();
			const r = await call('POST', '/api/v1/deploy/script', body);
			const ca = h('button', { type: 'button', class: 'secondary', id: 'deploy-ca',
				onclick: () => download('ca.crt', r.ca) }, 'Download ca.crt');
			const copy = h('button', { type: 'button', class: 'secondary', id: 'deploy-copy',
				onclick: () => navigator.clipboard.writeText(r.command).then(
					() => toast('Command copied')) }, 'Copy');
			fill(out, h('p', {}, `Into ${r.domain}, until ${fmtTime(r.expires)}` +
				(r.max_uses ? `, for ${r.max_uses} agents` : '') + ' (token ' +
				`${r.token_id}):`), h('pre', { id: 'deploy-line' }, r.command),
				h('div', { class: 'row actions' }, copy, ca),
				r.warning ? h('p', { class: 'error' }, r.warning) : null);
			onMade();
		});
	});
	return form;
}

function packagesPanel() {
	const body = h('tbody', { id: 'deploy-packages' });
	const where = h('p', { class: 'muted' });
	const load = async () => {
		const p = await get('/api/v1/deploy/packages');
		fill(where, 'From ', h('code', {}, p.dir), ': the newest of each architecture is ' +
			'served.');
		fill(body, ...p.packages.map((k) => h('tr', { 'data-file': k.file },
			h('td', {}, k.file), h('td', {}, k.version), h('td', {}, k.arch),
			h('td', {}, fmtBytes(k.size)), h('td', {}, k.served ? 'served' : 'older'))),
			...p.problems.map((k) => h('tr', { 'data-file': k.file },
				h('td', {}, k.file), h('td', { colspan: 4, class: 'error' }, k.error))));
		if (!p.packages.length && !p.problems.length)
			fill(body, h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No package: ' +
				'put ward-agent_VERSION_ARCH.deb files (make deb) there.')));
	};
	return { load, el: h('section', { class: 'panel', id: 'deploy-packages-panel' },
		h('h2', {}, 'Agent packages'), where,
		h('table', {}, h('tr', {}, h('th', {}, 'File'), h('th', {}, 'Version'),
			h('th', {}, 'Architecture'), h('th', {}, 'Size'), h('th', {}, '')), body)) };
}

function deploymentsPanel() {
	const err = h('div', { class: 'error', role: 'alert' });
	const body = h('tbody', { id: 'deploy-list' });
	const summary = h('p', { id: 'deploy-summary' });
	const ended = h('input', { type: 'checkbox', id: 'deploy-ended' });
	const load = async () => {
		const d = await get('/api/v1/deployments' + (ended.checked ? '?all=1' : ''));
		fill(summary, d.in_progress ? `${d.in_progress} in progress (an upgrade waits ` +
			'for them).' : 'None in progress.');
		fill(body, d.deployments.length ? d.deployments.map((x) => {
			const open = x.state === 'script' || x.state === 'package';
			return h('tr', { 'data-deployment': x.id },
				h('td', {}, x.address), h('td', {}, x.domain),
				h('td', {}, pill(x.state), x.message ? h('div', { class: 'muted' },
					x.message) : null),
				h('td', {}, x.version ? `${x.version} (${x.arch})` : ''),
				h('td', {}, x.client ? `client ${x.client}` : ''),
				h('td', { title: fmtTime(x.started) }, fmtAgo(x.started)),
				h('td', {}, open ? `times out ${fmtTime(x.deadline)}` : ''),
				h('td', {}, open ? h('button', { class: 'secondary write',
					onclick: () => showing(err, async () => {
						await call('POST', '/api/v1/deployments/cancel', { id: x.id });
						toast('Deployment cancelled');
						load();
					}) }, 'Cancel') : null));
		}) : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No deployment.')));
	};
	ended.addEventListener('change', () => showing(err, load));
	return { load, el: h('section', { class: 'panel', id: 'deployments' },
		h('h2', {}, 'Deployments'), summary,
		h('label', {}, ended, ' Show the ended ones too'), err,
		h('table', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'Domain'),
			h('th', {}, 'State'), h('th', {}, 'Package'), h('th', {}, 'Agent'),
			h('th', {}, 'Started'), h('th', {}, 'Deadline'), h('th', {}, '')), body)) };
}

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	const packages = packagesPanel();
	const list = deploymentsPanel();
	const load = () => showing(err, async () => {
		await packages.load();
		await list.load();
	});
	main.append(h('h1', {}, 'Deployment'), err, commandForm(load), packages.el, list.el);
	load();
	const timer = setInterval(load, 5000);
	return () => clearInterval(timer);
}
