// alerts.js -- Alerts: the channels messages go out by (email, syslog, a
// webhook), the rules that raise them, and every message with its outcome.
import { call, get } from './api.js';
import { field, fill, fmtTime, h, pill, showing, toast } from './dom.js';

// A starting configuration for each kind of channel (docs/api.md, "Alerts").
const templates = {
	email: { url: 'smtp://mail.example.org:25', from: 'ward@example.org',
		to: ['soc@example.org'], starttls: 'try' },
	syslog: { address: 'udp://127.0.0.1:514', facility: 'daemon' },
	webhook: { url: 'https://hooks.example.org/ward', secret: 'a shared secret' },
};
const kinds = ['detection', 'outbreak', 'outdated', 'sps', 'realtime', 'import', 'backup'];
const params = { outbreak: { detections: 10, minutes: 60, clients: 1 }, outdated: { hours: 24 },
	backup: { hours: 26 } };

function channelsPanel(err, reload) {
	const body = h('tbody', { id: 'alert-channels' });
	const name = h('input', { id: 'ch-name', autocomplete: 'off', placeholder: 'soc-mail' });
	const kind = h('select', { id: 'ch-kind' }, Object.keys(templates).map((k) =>
		h('option', { value: k }, k)));
	const config = h('textarea', { id: 'ch-config', rows: 5, cols: 60 });
	kind.addEventListener('change', () => {
		config.value = JSON.stringify(templates[kind.value], null, 1);
	});
	config.value = JSON.stringify(templates.email, null, 1);
	const form = h('form', { class: 'write', id: 'ch-form' }, field('Name', name),
		field('Kind', kind), field('Configuration (JSON)', config),
		h('div', { class: 'row actions' }, h('button', { type: 'submit', id: 'ch-save' },
			'Save channel')));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		showing(err, async () => {
			await call('PUT', '/api/v1/alerts/channels', { name: name.value.trim(),
				kind: kind.value, config: JSON.parse(config.value) });
			toast(`Channel ${name.value.trim()} saved`);
			reload();
		});
	});
	const load = (channels) => fill(body, channels.length ? channels.map((c) => h('tr',
		{ 'data-channel': c.name }, h('td', {}, c.name), h('td', {}, c.kind),
		h('td', {}, h('code', {}, JSON.stringify(c.config))),
		h('td', {}, h('button', { class: 'secondary write', onclick: () => showing(err,
			async () => {
				toast('Sending a test message...');
				await call('POST', '/api/v1/alerts/channels/test', { name: c.name });
				toast(`Test message sent by ${c.name}`);
				reload();
			}) }, 'Test'), ' ', h('button', { class: 'secondary write', onclick: () =>
			showing(err, async () => {
				await call('DELETE', `/api/v1/alerts/channels?name=${encodeURIComponent(c.name)}`);
				toast(`Channel ${c.name} removed`);
				reload();
			}) }, 'Remove')))) :
		h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No channel yet.')));
	return { load, el: h('section', { class: 'panel', id: 'alert-channels-panel' },
		h('h2', {}, 'Channels'), h('table', {}, h('tr', {}, h('th', {}, 'Name'),
			h('th', {}, 'Kind'), h('th', {}, 'Configuration'), h('th', {}, '')), body), form) };
}

function rulesPanel(err, reload) {
	const body = h('tbody', { id: 'alert-rules' });
	const name = h('input', { id: 'rule-name', autocomplete: 'off', placeholder: 'detections' });
	const kind = h('select', { id: 'rule-kind' }, kinds.map((k) => h('option', { value: k }, k)));
	const scope = h('input', { id: 'rule-scope', value: '/' });
	const channels = h('input', { id: 'rule-channels', placeholder: 'soc-mail, siem' });
	const args = h('input', { id: 'rule-params', value: '{}' });
	const every = h('input', { id: 'rule-every', type: 'number', min: 0, value: 300 });
	kind.addEventListener('change', () => {
		args.value = JSON.stringify(params[kind.value] || {});
	});
	const form = h('form', { class: 'write', id: 'rule-form' }, field('Name', name),
		field('Kind', kind), field('Scope (a domain)', scope),
		field('Channels (comma-separated)', channels), field('Parameters (JSON)', args),
		field('At most one message every (seconds)', every),
		h('div', { class: 'row actions' }, h('button', { type: 'submit', id: 'rule-save' },
			'Save rule')));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		showing(err, async () => {
			await call('PUT', '/api/v1/alerts/rules', { name: name.value.trim(),
				kind: kind.value, scope: scope.value.trim() || '/',
				channels: channels.value.split(',').map((c) => c.trim()).filter((c) => c),
				params: JSON.parse(args.value || '{}'), every: Number(every.value) });
			toast(`Rule ${name.value.trim()} saved`);
			reload();
		});
	});
	const load = (rules) => fill(body, rules.length ? rules.map((r) => h('tr',
		{ 'data-rule': r.name }, h('td', {}, r.name), h('td', {}, r.kind), h('td', {}, r.scope),
		h('td', {}, JSON.stringify(r.params)), h('td', {}, r.channels.join(', ')),
		h('td', {}, `${r.every} s`), h('td', {}, r.held || r.dropped ?
			`${r.held + r.dropped} waiting` : ''),
		h('td', {}, h('button', { class: 'secondary write', onclick: () => showing(err,
			async () => {
				await call('DELETE', `/api/v1/alerts/rules?name=${encodeURIComponent(r.name)}`);
				toast(`Rule ${r.name} removed`);
				reload();
			}) }, 'Remove')))) :
		h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No rule yet.')));
	return { load, el: h('section', { class: 'panel', id: 'alert-rules-panel' },
		h('h2', {}, 'Rules'), h('table', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Kind'),
			h('th', {}, 'Scope'), h('th', {}, 'Parameters'), h('th', {}, 'Channels'),
			h('th', {}, 'Every'), h('th', {}, 'Held'), h('th', {}, '')), body), form) };
}

function logPanel() {
	const body = h('tbody', { id: 'alert-log' });
	const load = (messages) => fill(body, messages.length ? messages.map((m) => h('tr',
		{ 'data-message': m.id }, h('td', {}, fmtTime(m.time)), h('td', {}, m.rule),
		h('td', {}, m.channel), h('td', {}, m.subject),
		h('td', {}, pill(m.state), m.error ? h('div', { class: 'muted' }, m.error) : null))) :
		h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No message yet.')));
	return { load, el: h('section', { class: 'panel', id: 'alert-log-panel' },
		h('h2', {}, 'Messages'), h('table', {}, h('tr', {}, h('th', {}, 'Time'),
			h('th', {}, 'Rule'), h('th', {}, 'Channel'), h('th', {}, 'Subject'),
			h('th', {}, 'State')), body)) };
}

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	let channels, rules, log;
	const load = () => showing(err, async () => {
		const [c, r, l] = await Promise.all([get('/api/v1/alerts/channels'),
			get('/api/v1/alerts/rules'), get('/api/v1/alerts/log?limit=50')]);
		channels.load(c.channels);
		rules.load(r.rules);
		log.load(l.messages);
	});
	channels = channelsPanel(err, load);
	rules = rulesPanel(err, load);
	log = logPanel();
	main.append(h('h1', {}, 'Alerts'), h('p', { class: 'muted' }, 'Rules raise alerts ' +
		'(detections, outbreaks, outdated components, smart protection or real-time ' +
		'protection failing, failed imports and backups); each sends by its channels at ' +
		'most once per its interval, what it raised meanwhile together.'), err,
		channels.el, rules.el, log.el);
	load();
	const timer = setInterval(load, 5000);
	return () => clearInterval(timer);
}
