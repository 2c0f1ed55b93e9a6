// licenses.js -- Licenses: each service's state, seats and the clients
// using it; the license files held; activating one (its file pasted or
// chosen) and removing one. banner() shows on every page what the
// licenses warn of (an end near, updates stopping or stopped, seats).
import { call, get } from './api.js';
import { dialog, fill, fmtTime, h, pill, showing, toast } from './dom.js';

const stateText = {
	grace: 'expired: pattern updates go on until the grace period ends',
	ended: 'expired: pattern updates stopped', pending: 'starts later',
	unlicensed: 'no license covers it',
};

// Fills el (the page's #license-notices) with the warnings of GET
// /api/v1/licenses (none: empty).
export async function banner(el = document.getElementById('license-notices')) {
	let l;
	try {
		l = await get('/api/v1/licenses');
	} catch {
		return; // the page itself says what failed
	}
	fill(el, l.notices.map((n) => h('div', {
		class: n.kind === 'error' ? 'notice stopped' : 'notice', role: 'status',
		'data-services': n.services.join(' '),
	}, n.text[0].toUpperCase() + n.text.slice(1), '. ', h('a', { href: '#/licenses' },
		'Licenses'))));
}

function serviceRow(s) {
	const seats = s.state === 'active' || s.state === 'grace' ?
		`${s.in_use} of ${s.seats}` : `${s.in_use} (no seats)`;
	return h('tr', { 'data-service': s.service },
		h('td', {}, s.service),
		h('td', {}, pill(s.state), stateText[s.state] ? ` ${stateText[s.state]}` : '',
			s.evaluation ? ' (evaluation)' : ''),
		h('td', { class: s.in_use > s.seats ? 'bad' : '' }, seats),
		h('td', {}, s.expires ? fmtTime(s.expires) : '-',
			s.days_left !== undefined ? ` (${s.days_left} days)` : ''),
		h('td', {}, s.updates_until ? fmtTime(s.updates_until) : '-'));
}

function licenseRow(l, reload) {
	const remove = h('button', { class: 'secondary write', 'data-remove': l.id }, 'Remove');
	remove.addEventListener('click', () => dialog(`Remove license ${l.id}?`,
		h('p', {}, 'What it licenses stops being covered by it.'), [{
			label: 'Remove', class: 'danger', action: async () => {
				await call('DELETE', `/api/v1/licenses?id=${encodeURIComponent(l.id)}`);
				toast(`License ${l.id} removed`);
				reload();
				banner();
			},
		}]));
	if (!l.trusted && !l.customer)
		return h('tr', { 'data-license': l.id }, h('td', {}, l.id),
			h('td', { colspan: 5, class: 'bad' }, l.error), h('td', {}, remove));
	return h('tr', { 'data-license': l.id },
		h('td', {}, l.id, l.evaluation ? h('span', { class: 'muted' }, ' (evaluation)') : ''),
		h('td', {}, l.customer),
		h('td', {}, l.services.join(', ')),
		h('td', {}, String(l.seats)),
		h('td', {}, `${fmtTime(l.start)} to ${fmtTime(l.expires)}`,
			l.grace_days ? `, then ${l.grace_days} days' grace` : ''),
		h('td', {}, l.trusted ? pill(l.phase) : h('span', { class: 'bad' }, l.error)),
		h('td', {}, remove));
}

function addDialog(reload) {
	const text = h('textarea', { id: 'license-text', rows: 10,
		placeholder: '{"key": "...", "license": "...", "signature": "..."}' });
	const file = h('input', { type: 'file', id: 'license-file', accept: '.json,.lic,.txt' });
	file.addEventListener('change', async () => {
		if (file.files.length)
			text.value = await file.files[0].text();
	});
	return dialog('Activate a license', [
		h('p', { class: 'muted' }, 'Paste the license file your issuer sent, or choose it.'),
		file, text], [{
		label: 'Activate', action: async () => {
			const l = await call('POST', '/api/v1/licenses', { license: text.value });
			toast(`License ${l.id} activated`);
			reload();
			banner();
		},
	}]);
}

export function show(main) {
	const err = h('div', { class: 'error', role: 'alert' });
	const services = h('tbody', { id: 'license-services' });
	const list = h('tbody', { id: 'license-list' });
	const issuers = h('p', { class: 'muted', id: 'license-issuers' });
	const add = h('button', { id: 'license-add', class: 'write' }, 'Activate a license');
	const load = () => showing(err, async () => {
		const l = await get('/api/v1/licenses');
		fill(services, l.services.map(serviceRow));
		fill(list, l.licenses.length ? l.licenses.map((x) => licenseRow(x, load)) :
			h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No license.')));
		fill(issuers, l.issuers ? `This server accepts license files of ${l.issuers} ` +
			`issuer${l.issuers === 1 ? '' : 's'} (license.issuers).` :
			'No issuer is configured (license.issuers): only the evaluation license ' +
			'this server made applies.');
	});
	add.addEventListener('click', () => addDialog(load));
	main.append(h('h1', {}, 'Licenses'),
		h('section', { class: 'panel', id: 'licenses' },
			h('p', { class: 'muted' }, 'At expiry protection goes on: scanning, real-time ' +
				'scanning and smart protection. Pattern updates go on through the grace ' +
				'period, then stop; switching clients to smart scan or real-time scanning ' +
				'needs an active license.'),
			h('table', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'State'),
				h('th', {}, 'Clients / seats'), h('th', {}, 'Expires'),
				h('th', {}, 'Updates until')), services)),
		h('section', { class: 'panel' }, h('h2', {}, 'License files'), issuers,
			h('div', { class: 'row actions' }, add), err,
			h('table', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Customer'),
				h('th', {}, 'Services'), h('th', {}, 'Seats'), h('th', {}, 'Term'),
				h('th', {}, 'State'), h('th', {}, '')), list)));
	load();
	return null;
}
