// dom.js -- building the page from data without innerHTML: every value
// the server sends is set as text, so nothing it holds can run as markup.

// h('div', {class: 'x', onclick: f}, child, 'text', [more]) makes an element.
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false)
			continue;
		if (k.startsWith('on'))
			el.addEventListener(k.slice(2), v);
		else if (k === 'value')
			el.value = v;
		else if (k === 'checked' || k === 'disabled' || k === 'selected')
			el[k] = !!v;
		else
			el.setAttribute(k, v === true ? '' : String(v));
	}
	add(el, children);
	return el;
}

function add(el, children) {
	for (const c of children) {
		if (c === undefined || c === null || c === false)
			continue;
		if (Array.isArray(c))
			add(el, c);
		else
			el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
}

// Replaces the children of el.
export function fill(el, ...children) {
	el.replaceChildren();
	add(el, children);
	return el;
}

export function fmtTime(t) {
	if (!t)
		return 'never';
	const d = new Date(t * 1000);
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
		`${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtAgo(t) {
	if (!t)
		return 'never';
	const s = Math.max(0, Math.round(Date.now() / 1000 - t));
	if (s < 90)
		return `${s} s ago`;
	if (s < 5400)
		return `${Math.round(s / 60)} min ago`;
	if (s < 129600)
		return `${Math.round(s / 3600)} h ago`;
	return `${Math.round(s / 86400)} days ago`;
}

export function fmtDuration(s) {
	if (s % 86400 === 0)
		return `${s / 86400} d`;
	if (s % 3600 === 0)
		return `${s / 3600} h`;
	if (s % 60 === 0)
		return `${s / 60} min`;
	return `${s} s`;
}

export function fmtBytes(n) {
	if (n >= 1 << 30)
		return `${(n / (1 << 30)).toFixed(1)} GiB`;
	if (n >= 1 << 20)
		return `${(n / (1 << 20)).toFixed(1)} MiB`;
	if (n >= 1024)
		return `${(n / 1024).toFixed(1)} KiB`;
	return `${n} B`;
}

export function fmtValue(v) {
	return typeof v === 'string' ? v : JSON.stringify(v);
}

export function pill(state) {
	return h('span', { class: `pill ${state}` }, state);
}

// A short message at the corner of the page.
export function toast(text, bad) {
	const t = h('div', { class: bad ? 'toast bad' : 'toast', role: 'status' }, text);
	document.body.append(t);
	setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

// A modal dialog: body is an element (or list), buttons [{label, class,
// action}] where action returns false to keep the dialog open (on an
// error it shows). Resolves when closed.
export function dialog(title, body, buttons) {
	return new Promise((resolve) => {
		const err = h('div', { class: 'error' });
		const close = () => { back.remove(); resolve(); };
		const row = h('div', { class: 'buttons' },
			h('button', { class: 'secondary', onclick: close }, 'Cancel'),
			buttons.map((b) => h('button', {
				class: b.class || '',
				onclick: async (ev) => {
					ev.target.disabled = true;
					fill(err);
					try {
						if (await b.action() !== false)
							close();
					} catch (e) {
						fill(err, e.message);
					}
					ev.target.disabled = false;
				},
			}, b.label)));
		const back = h('div', { class: 'dialog-back' },
			h('div', { class: 'dialog', role: 'dialog', 'aria-label': title },
				h('h2', {}, title), body, err, row));
		document.body.append(back);
		const first = back.querySelector('input, select, textarea');
		if (first)
			first.focus();
	});
}

// Runs fn (async) with err emptied first; what it throws is shown in err.
export async function showing(err, fn) {
	fill(err);
	try {
		await fn();
	} catch (e) {
		fill(err, e.message);
	}
}

// Saves data (text as it is, else JSON, pretty) as a file named name.
export function download(name, data) {
	const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
	const a = h('a', { href: URL.createObjectURL(new Blob([text], { type: typeof data ===
		'string' ? 'text/plain' : 'application/json' })), download: name });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export function field(label, input) {
	return [h('label', {}, label), input];
}

// svg('rect', {x: 1}) makes an SVG element the way h() makes HTML ones.
export function svg(tag, attrs, ...children) {
	const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
	for (const [k, v] of Object.entries(attrs || {}))
		if (v !== undefined && v !== null && v !== false)
			el.setAttribute(k, String(v));
	add(el, children);
	return el;
}

// Control and bidirectional-override characters of text from agents,
// written \xNN (\u{N} above 0xff) so that a hostile file name cannot
// break a line or reorder what is shown.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function safeText(s) {
	return String(s).replace(UNSAFE, (c) => {
		const n = c.codePointAt(0);
		return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
	});
}

// A path or name from an agent as an element: escapes (the agent's \xNN
// for bytes that are not UTF-8, and those safeText makes) marked apart.
export function safePath(s, attrs) {
	const parts = safeText(s).split(/(\\x[0-9a-fA-F]{2}|\\u\{[0-9a-f]+\})/);
	return h('span', { class: 'mono', title: safeText(s), ...attrs },
		parts.map((p, i) => (i % 2 ? h('span', { class: 'esc' }, p) : p)));
}

export function fmtCount(n) {
	return Number(n || 0).toLocaleString('en');
}
