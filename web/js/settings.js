// settings.js -- the settings of one node of the client tree (root,
// domain or client): each setting's value in effect, whether it is set
// here or inherited and from where, and editing it. Uses GET
// /api/v1/settings/keys, GET/PUT/DELETE /api/v1/settings.
import { call, get, query } from './api.js';
import { h, fill, fmtValue, showing, toast } from './dom.js';

let keys = null;

export async function settingKeys() {
	if (!keys)
		keys = (await get('/api/v1/settings/keys')).settings;
	return keys;
}

// "root", "domain:/A/B" or "client:7" as words.
export function describeScope(scope) {
	if (scope === 'root')
		return 'the root';
	if (scope.startsWith('domain:'))
		return `domain ${scope.slice(7)}`;
	return `client ${scope.slice(7)}`;
}

function editor(def, value) {
	if (def.type === 'bool' || def.type === 'enum') {
		const choices = def.type === 'bool' ? [true, false] : def.choices;
		return h('select', { 'data-key': def.key }, choices.map((c) =>
			h('option', { value: JSON.stringify(c), selected: c === value }, String(c))));
	}
	if (def.type === 'int')
		return h('input', { type: 'number', min: def.min, max: def.max, value,
			'data-key': def.key });
	// A list of paths: one a line.
	if (def.type === 'paths') {
		const el = h('textarea', { 'data-key': def.key, rows: 4, cols: 32 });
		el.value = (value || []).join('\n');
		return el;
	}
	return h('input', { value, 'data-key': def.key, size: 16 });
}

function readEditor(def, el) {
	if (def.type === 'bool' || def.type === 'enum')
		return JSON.parse(el.value);
	if (def.type === 'int') {
		const n = Number(el.value);
		if (!Number.isInteger(n))
			throw new Error(`${def.key}: enter a whole number`);
		return n;
	}
	if (def.type === 'paths')
		return el.value.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
	return el.value;
}

// Returns an element showing scope's settings: those placeable at its
// level, narrowed to opts.only or without opts.exclude (lists of keys);
// opts.onChange runs after a change.
export function settingsPanel(scope, opts = {}) {
	const level = scope === 'root' ? 'root' : scope.split(':')[0];
	const el = h('div', { class: 'settings', 'data-scope': scope }, h('p', { class: 'muted' },
		'Loading settings...'));
	const apply = h('select', { id: 'apply-mode' },
		h('option', { value: 'inherit' }, 'only where not set below'),
		h('option', { value: 'all' }, 'apply to all below (replaces their own values)'));

	async function save(def, input) {
		const body = { scope, key: def.key, value: readEditor(def, input) };
		if (level !== 'client')
			body.apply = apply.value;
		const r = await call('PUT', '/api/v1/settings', body);
		toast(`${def.key} set on ${describeScope(scope)}: ${r.changed} client(s) changed`);
		load();
		if (opts.onChange)
			opts.onChange();
	}

	async function unset(def) {
		const r = await call('DELETE', `/api/v1/settings${query({ scope, key: def.key })}`);
		toast(`${def.key} on ${describeScope(scope)} inherits again: ${r.changed} ` +
			'client(s) changed');
		load();
		if (opts.onChange)
			opts.onChange();
	}

	async function load() {
		let defs, s;
		try {
			defs = await settingKeys();
			s = await get(`/api/v1/settings${query({ scope })}`);
		} catch (e) {
			fill(el, h('p', { class: 'error' }, e.message));
			return;
		}
		const rows = defs.filter((d) => d.levels.includes(level) &&
			(!opts.only || opts.only.includes(d.key)) &&
			(!opts.exclude || !opts.exclude.includes(d.key))).map((def) => {
			const own = Object.prototype.hasOwnProperty.call(s.own, def.key);
			const from = s.origin[def.key];
			const input = editor(def, s.effective[def.key]);
			const err = h('div', { class: 'error' });
			const run = (fn) => () => showing(err, fn);
			return h('tr', { 'data-setting': def.key },
				h('td', {}, h('div', { class: 'mono' }, def.key),
					h('div', { class: 'muted' }, def.summary)),
				h('td', {}, input, err),
				h('td', { class: 'origin' }, own ? h('span', { class: 'ok' }, 'set here') :
					h('span', { class: 'muted' }, from ? `inherited from ${describeScope(from)}` :
						'default'), h('div', { class: 'muted' },
						`in effect: ${fmtValue(s.effective[def.key])}`)),
				h('td', {}, h('div', { class: 'row' },
					h('button', { class: 'secondary write', onclick: run(() => save(def, input)) },
						'Save'),
					own && level !== 'root' ? h('button', { class: 'secondary write',
						onclick: run(() => unset(def)) }, 'Inherit') : null)));
		});
		fill(el,
			level !== 'client' ? h('div', { class: 'row write' }, h('span', { class: 'muted' },
				'When saving, for the domains and clients below:'), apply) : null,
			h('table', {}, h('tr', {}, h('th', {}, 'Setting'), h('th', {}, 'Value'),
				h('th', {}, 'Where it comes from'), h('th', {})), rows));
	}
	load();
	return el;
}
