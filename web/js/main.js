// main.js -- the console's shell: sign-in, the navigation and the router
// (#/page), which hands the main area to one page module at a time.
import { call, get, setCsrf, setExpiredHandler } from './api.js';
import { h, fill } from './dom.js';
import * as dashboard from './dashboard.js';
import * as agents from './agents.js';
import * as global from './global.js';
import * as updates from './updates.js';
import * as sps from './sps.js';
import * as quarantine from './quarantine.js';
import * as logs from './logs.js';
import * as admins from './admins.js';
import * as backups from './backups.js';
import * as deploy from './deploy.js';
import * as alerts from './alerts.js';
import * as licenses from './licenses.js';
import * as upgrades from './upgrades.js';
import * as posture from './posture.js';

const pages = [
	{ id: 'dashboard', title: 'Dashboard', mod: dashboard },
	{ id: 'agents', title: 'Agents', mod: agents },
	{ id: 'deploy', title: 'Deployment', mod: deploy },
	{ id: 'upgrades', title: 'Agent upgrades', mod: upgrades },
	{ id: 'posture', title: 'Posture', mod: posture },
	{ id: 'settings', title: 'Global agent settings', mod: global },
	{ id: 'updates', title: 'Updates', mod: updates },
	{ id: 'smart', title: 'Smart protection', mod: sps },
	{ id: 'quarantine', title: 'Quarantine', mod: quarantine },
	{ id: 'logs', title: 'Logs', mod: logs },
	{ id: 'alerts', title: 'Alerts', mod: alerts },
	{ id: 'admins', title: 'Administrators', mod: admins },
	{ id: 'backups', title: 'Backups', mod: backups },
	{ id: 'licenses', title: 'Licenses', mod: licenses },
];

const app = document.getElementById('app');
let session = null;
let current = null;   // the page shown: { id, leave }

function signIn(message) {
	session = null;
	setCsrf(null);
	leave();
	const user = h('input', { id: 'user', name: 'user', autocomplete: 'username', value: 'admin' });
	const password = h('input', { id: 'password', name: 'password', type: 'password',
		autocomplete: 'current-password' });
	const err = h('div', { class: 'error', role: 'alert' }, message || '');
	const form = h('form', { class: 'panel signin' },
		h('h1', {}, 'Ward console'),
		h('p', { class: 'muted' }, 'Sign in with an administrator account of this server.'),
		h('label', { for: 'user' }, 'User'), user,
		h('label', { for: 'password' }, 'Password'), password,
		err,
		h('button', { type: 'submit' }, 'Sign in'));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		fill(err);
		try {
			const s = await call('POST', '/api/v1/login', {
				user: user.value, password: password.value, cookie: true });
			password.value = '';
			start(s);
		} catch (e) {
			fill(err, e.status === 429 ? `${e.message}` :
				e.status === 401 ? 'Wrong user name or password.' : e.message);
		}
	});
	fill(app, form);
	(user.value ? password : user).focus();
}

function leave() {
	if (current && current.leave)
		current.leave();
	current = null;
}

async function signOut() {
	try {
		await call('POST', '/api/v1/logout');
	} catch {
		// The session may have ended already; the sign-in page follows anyway.
	}
	signIn('Signed out.');
}

let main, nav, notices;

function start(s) {
	session = s;
	setCsrf(s.csrf);
	// A read-only administrator is not shown what the server would refuse.
	document.body.classList.toggle('read-only', s.role !== 'admin');
	nav = h('nav', {}, pages.map((p) => h('a', { href: `#/${p.id}`, 'data-page': p.id },
		p.title)));
	main = h('main', {});
	notices = h('div', { id: 'license-notices' });
	fill(app,
		h('header', { class: 'top' },
			h('span', { class: 'brand' }, 'Ward'),
			h('span', { class: 'muted' }, 'management console'),
			h('span', { class: 'grow' }),
			h('span', { id: 'who' }, s.role === 'admin' ? s.user : `${s.user} (${s.role})`),
			h('button', { id: 'signout', onclick: signOut }, 'Sign out')),
		notices, h('div', { class: 'shell' }, nav, main));
	route();
}

function route() {
	if (!session)
		return;
	const [id, ...rest] = (location.hash.replace(/^#\/?/, '') || 'dashboard').split('/');
	const page = pages.find((p) => p.id === id) || pages[0];
	const args = rest.map((a) => {
		try {
			return decodeURIComponent(a);
		} catch {
			return a;
		}
	});
	leave();
	for (const a of nav.querySelectorAll('a'))
		a.classList.toggle('active', a.dataset.page === page.id);
	document.title = `${page.title} - Ward console`;
	fill(main);
	current = { id: page.id, leave: page.mod.show(main, args, session) };
	licenses.banner(notices);
}

window.addEventListener('hashchange', route);
setExpiredHandler(() => {
	if (session)
		signIn('Your session has ended; sign in again.');
});

// A page opened with a live session goes straight in.
get('/api/v1/session').then(start, () => signIn());
