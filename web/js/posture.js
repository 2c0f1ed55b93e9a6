// posture.js -- Posture: each client compliant or not under the posture
// policy in effect for it (the posture.* settings), with the reasons; and
// the posture tokens that let a policy server (FreeRADIUS, say) ask for
// one host.
import { call, get } from './api.js';
import { field, fill, fmtAgo, fmtTime, h, pill, safeText, showing, toast } from './dom.js';

const checkText = {
	component: 'pattern', realtime: 'real time', full_scan: 'full scan', license: 'license',
	threats: 'threats', report: 'no report',
};

function clientRow(c) {
	return h('tr', { 'data-client': c.id, 'data-compliant': String(c.compliant) },
		h('td', {}, safeText(c.hostname)), h('td', {}, c.scan_method),
		h('td', {}, pill(c.state), c.last_seen ? ` ${fmtAgo(c.last_seen)}` : ''),
		h('td', {}, pill(c.compliant ? 'compliant' : 'noncompliant')),
		h('td', {}, c.reasons.map((r) => h('div', { 'data-check': r.check },
			h('b', {}, `${checkText[r.check] || r.check}: `), safeText(r.message)))));
}

function tokensPanel() {
	const err = h('div', { class: 'error', role: 'alert' });
	const body = h('tbody', { id: 'posture-tokens' });
	const name = h('input', { id: 'posture-token-name', placeholder: 'radius-1',
		autocomplete: 'off' });
	const days = h('input', { id: 'posture-token-days', type: 'number', min: 1, max: 3650,
		value: 365 });
	const made = h('div', { id: 'posture-token-made' });
	const load = () => showing(err, async () => {
		const t = await get('/api/v1/posture/tokens');
		fill(body, t.tokens.length ? t.tokens.map((k) => h('tr', { 'data-token': k.id },
			h('td', {}, k.id), h('td', {}, k.name), h('td', {}, fmtTime(k.expires)),
			h('td', {}, h('button', { class: 'secondary write', onclick: () => showing(err,
				async () => {
					await call('POST', '/api/v1/posture/tokens/revoke', { id: k.id });
					toast(`Token ${k.id} revoked`);
					load();
				}) }, 'Revoke')))) :
			h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'None.')));
	});
	const form = h('form', { class: 'write', id: 'posture-token-form' },
		h('div', { class: 'row' }, field('Policy server', name), field('Valid for (days)', days)),
		h('div', { class: 'row actions' }, h('button', { type: 'submit',
			id: 'posture-token-make' }, 'Make a token')));
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		showing(err, async () => {
			const r = await call('POST', '/api/v1/posture/tokens', { name: name.value.trim(),
				days: Number(days.value) });
			fill(made, h('p', {}, `For ${r.name}, until ${fmtTime(r.expires)}; shown this ` +
				'once:'), h('pre', { id: 'posture-token-value' }, r.token));
			load();
		});
	});
	load();
	return h('section', { class: 'panel' }, h('h2', {}, 'Policy servers'),
		h('p', { class: 'muted' }, 'A posture token lets a policy server ask for one host: ',
			h('code', {}, 'GET /api/v1/posture/host?name=HOST'), ' (or address, mac, uuid) ' +
			'with the token as its bearer token. It opens nothing else.'),
		form, made, err,
		h('table', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Policy server'),
			h('th', {}, 'Expires'), h('th', {}, '')), body));
}

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	const only = h('select', { id: 'posture-only' }, h('option', { value: '' }, 'All clients'),
		h('option', { value: 'noncompliant' }, 'Non-compliant'),
		h('option', { value: 'compliant' }, 'Compliant'));
	const summary = h('p', { id: 'posture-summary' });
	const rows = h('tbody', { id: 'posture-clients' });
	const load = () => showing(err, async () => {
		const p = await get('/api/v1/posture' + (only.value ? `?only=${only.value}` : ''));
		fill(summary, `${p.summary.compliant} compliant, ${p.summary.noncompliant} ` +
			`non-compliant (checked ${fmtTime(p.checked)}).`);
		fill(rows, p.clients.length ? p.clients.map(clientRow) :
			h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'None.')));
	});
	only.addEventListener('change', load);
	main.append(h('h1', {}, 'Posture'), h('p', { class: 'muted' }, 'Whether each client ' +
		'may join the network under the posture policy in effect for it: the posture.* ' +
		'settings, set on the root, a domain or a client like any other.'), err,
		h('section', { class: 'panel' }, h('div', { class: 'row' }, field('Show', only)),
			summary, h('table', {}, h('tr', {}, h('th', {}, 'Client'), h('th', {}, 'Scan'),
				h('th', {}, 'State'), h('th', {}, 'Posture'), h('th', {}, 'Reasons')), rows)),
		tokensPanel());
	load();
	const timer = setInterval(load, 10000);
	return () => clearInterval(timer);
}
