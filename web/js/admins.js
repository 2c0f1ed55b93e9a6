// admins.js -- Administrators: changing one's own password, and (role
// admin) the administrators of this server with their roles.
import { call, get } from './api.js';
import { h, fill, showing, toast, field } from './dom.js';

const roles = ['admin', 'read-only'];

function roleSelect(id, value) {
	return h('select', { id }, roles.map((r) => h('option', { value: r, selected: r === value },
		r)));
}

function passwordForm(session) {
	const current = h('input', { id: 'pw-current', type: 'password',
		autocomplete: 'current-password' });
	const next = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password' });
	const again = h('input', { id: 'pw-again', type: 'password', autocomplete: 'new-password' });
	const err = h('div', { class: 'error', role: 'alert' });
	const form = h('form', { class: 'panel', id: 'password' },
		h('h2', {}, 'Your password'),
		h('p', { class: 'muted' }, `Signed in as ${session.user} (${session.role}). Your other ` +
			'sessions end when the password changes.'),
		field('Current password', current), field('New password', next),
		field('New password again', again), err,
		h('div', { class: 'row actions' }, h('button', { type: 'submit', id: 'pw-save' },
			'Change password')));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		fill(err);
		if (next.value !== again.value) {
			fill(err, 'The new passwords differ.');
			return;
		}
		try {
			await call('POST', '/api/v1/admins/passwd', { password: current.value,
				new_password: next.value });
			current.value = next.value = again.value = '';
			toast('Password changed');
		} catch (e) {
			fill(err, e.message);
		}
	});
	return form;
}

function adminList(el, session) {
	const err = h('div', { class: 'error', role: 'alert' });
	const body = h('tbody', { id: 'admin-list' });
	const run = (fn) => async () => {
		await showing(err, fn);
		load();
	};
	const load = async () => {
		let admins;
		try {
			({ admins } = await get('/api/v1/admins'));
		} catch (e) {
			fill(err, e.message);
			return;
		}
		fill(body, admins.map((a) => {
			const role = roleSelect(`role-${a.name}`, a.role);
			role.classList.add('write');
			role.addEventListener('change', run(async () => {
				await call('PUT', '/api/v1/admins/role', { name: a.name, role: role.value });
				toast(`${a.name} is now ${role.value}`);
			}));
			return h('tr', { 'data-admin': a.name },
				h('td', {}, a.name, a.name === session.user ? h('span', { class: 'muted' },
					' (you)') : null),
				h('td', {}, h('span', { class: 'read-only-text' }, a.role), role),
				h('td', {}, h('button', { class: 'secondary write', id: `remove-${a.name}`,
					onclick: run(async () => {
						await call('DELETE', `/api/v1/admins?name=${encodeURIComponent(a.name)}`);
						toast(`Administrator ${a.name} removed`);
					}) }, 'Remove')));
		}));
	};
	const name = h('input', { id: 'admin-name', autocomplete: 'off' });
	const role = roleSelect('admin-role', 'read-only');
	const password = h('input', { id: 'admin-password', type: 'password',
		autocomplete: 'new-password' });
	const add = h('form', { class: 'write', id: 'admin-add-form' },
		h('h3', {}, 'Add an administrator'),
		h('div', { class: 'row' }, h('div', {}, field('Name', name)),
			h('div', {}, field('Role', role)), h('div', {}, field('Password', password))),
		h('div', { class: 'row actions' }, h('button', { type: 'submit', id: 'admin-add' }, 'Add')));
	add.addEventListener('submit', (ev) => {
		ev.preventDefault();
		run(async () => {
			await call('POST', '/api/v1/admins', { name: name.value.trim(), role: role.value,
				new_password: password.value });
			toast(`Administrator ${name.value.trim()} added`);
			name.value = password.value = '';
		})();
	});
	fill(el, h('h2', {}, 'Administrators'),
		h('p', { class: 'muted' }, 'admin: every action; read-only: sees everything, changes ' +
			'nothing but their own password. A removed administrator\'s sessions end at once.'),
		h('table', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Role'), h('th', {})), body),
		err, add);
	load();
}

export function show(main, args, session) {
	const list = h('section', { class: 'panel', id: 'admins' });
	main.append(h('h1', {}, 'Administrators'), passwordForm(session), list);
	adminList(list, session);
}
