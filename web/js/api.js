// api.js -- the console's only way to the server: wardd's REST API
// (docs/api.md), the same operations the `ward` command line uses. The
// session is a cookie the page cannot read; requests that change
// something carry the session's CSRF token in a header.

let csrf = null;
let onExpired = () => {};

export class ApiError extends Error {
	constructor(status, message, retryAfter) {
		super(message);
		this.status = status;
		this.retryAfter = retryAfter;
	}
}

export function setExpiredHandler(fn) {
	onExpired = fn;
}

export function setCsrf(token) {
	csrf = token;
}

// Sends method path with body (JSON; undefined: none). Resolves to the
// answer's JSON; rejects with an ApiError carrying the server's message.
// A background request (a page refreshing itself) does not keep the
// session alive: only the administrator's own requests do.
export async function call(method, path, body, background) {
	const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
	if (background)
		opts.headers['X-Ward-Background'] = '1';
	if (body !== undefined) {
		opts.body = JSON.stringify(body);
		opts.headers['Content-Type'] = 'application/json';
	}
	if (method !== 'GET' && csrf)
		opts.headers['X-Ward-CSRF'] = csrf;
	let r;
	try {
		r = await fetch(path, opts);
	} catch (e) {
		throw new ApiError(0, `the server cannot be reached (${e.message})`);
	}
	const text = await r.text();
	let data = null;
	try {
		data = text ? JSON.parse(text) : null;
	} catch {
		data = { error: text };
	}
	if (r.status === 401 && path !== '/api/v1/login') {
		csrf = null;
		onExpired();
	}
	if (!r.ok)
		throw new ApiError(r.status, (data && data.error) || r.statusText,
			r.headers.get('Retry-After'));
	return data;
}

export const get = (path, background) => call('GET', path, undefined, background);

// A query string from an object, leaving out empty values.
export function query(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params))
		if (v !== undefined && v !== null && v !== '')
			q.set(k, v);
	const s = q.toString();
	return s ? `?${s}` : '';
}

// Runs fn over items, n at a time; calls progress(done, total) as they end.
export async function each(items, n, fn, progress) {
	let next = 0, done = 0;
	const errors = [];
	async function worker() {
		while (next < items.length) {
			const item = items[next++];
			try {
				await fn(item);
			} catch (e) {
				errors.push(`${item}: ${e.message}`);
			}
			done++;
			if (progress)
				progress(done, items.length);
		}
	}
	await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
	return errors;
}
