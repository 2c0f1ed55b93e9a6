// console.mjs -- the web console in a real browser: Debian's chromium,
// headless, driven by playwright-core, against a real wardd with a real
// agent (test_browser.py starts both and passes them in the environment).
//
// WARD_URL      https://localhost:PORT of the server
// WARD_PASSWORD the admin password
// WARD_AGENT    the host name of the enrolled agent
// WARD_SCANS    JSON: the directories its scans scan (found, slow, many),
//               the quarantined files' paths as shown (eicar, evil), and
//               the files and bytes of the first scan
// WARD_SHOTS    the directory the screenshots go to
// WARD_LICENSE  a license file an issuer the server trusts signed
// CHROMIUM      the browser (default /usr/bin/chromium)
//
// What only test_browser.py can do on the agent's host (put a file in the
// way, compare a restored file with the original), it does when asked:
// ask() prints "ask: WHAT" and reads its answer, a line, from the
// standard input.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const url = process.env.WARD_URL;
const password = process.env.WARD_PASSWORD;
const host = process.env.WARD_AGENT;
const scans = JSON.parse(process.env.WARD_SCANS);
const shots = process.env.WARD_SHOTS;
fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
	headless: true,
	// This machine's network is closed: no background connections.
	args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
		'--disable-component-update', '--disable-sync'],
});
// The server's certificate comes from its own CA, which this browser
// profile does not hold.
const context = await browser.newContext({ ignoreHTTPSErrors: true,
	viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
	// Refusals the test provokes (4xx) show in the page; anything else is a fault.
	if (m.type() === 'error' && !/status of 4\d\d/.test(m.text()))
		problems.push(`console error: ${m.text()}`);
});

async function shot(name) {
	await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

// Each step with the seconds since the start: where a slow run spent them.
const started = Date.now();
function step(name) {
	console.log(`step: ${name} (at ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const input = readline.createInterface({ input: process.stdin });
const answers = input[Symbol.asyncIterator]();

async function ask(what) {
	console.log(`ask: ${what}`);
	const { value, done } = await answers.next();
	if (done || value !== 'ok')
		throw new Error(`test_browser.py did not ${what}: ${done ? 'no answer' : value}`);
}

// The task of the first (newest) row of a task table, once it is not
// the task not.
async function newestTask(table, not) {
	const found = await page.waitForFunction(([t, n]) => {
		const r = document.querySelector(`${t} tr[data-task]`);
		return r && r.dataset.task !== n ? r.dataset.task : false;
	}, [table, not || '']);
	return found.jsonValue();
}

try {
	step('the console is served at /console/ and asks for a sign-in');
	await page.goto(`${url}/`);
	assert.match(page.url(), /\/console\/$/);
	await page.waitForSelector('form.signin');
	await shot('signin');

	step('a wrong password is refused');
	await page.fill('#password', 'not-the-password');
	await page.click('form.signin button[type=submit]');
	await page.waitForSelector('form.signin .error:has-text("Wrong user name or password")');

	step('sign in');
	await page.fill('#password', password);
	await page.click('form.signin button[type=submit]');
	await page.waitForSelector('#dashboard #card-states');
	const cookies = await context.cookies();
	const session = cookies.find((c) => c.name === '__Host-ward_session');
	assert.ok(session, 'the session cookie is set');
	assert.equal(session.httpOnly, true);
	assert.equal(session.secure, true);
	assert.equal(session.sameSite, 'Strict');
	assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read it');

	step('the dashboard shows the agent');
	await page.waitForSelector('#card-states [data-count=online]:text("1")');
	await page.waitForSelector('#moved-count:has-text("1 moved to other servers")');
	await page.waitForSelector('#card-queue .big:text("0")');
	await page.waitForSelector('#card-components td:text("Virus Pattern")');
	await shot('dashboard');
	await page.click('#view-queue');
	await page.waitForSelector('.dialog h2:text("Notification queue")');
	await page.click('.dialog button:text("Cancel")');

	step('a request without the CSRF token is refused');
	const forged = await page.evaluate(async () => (await fetch('/api/v1/domains', {
		method: 'POST', body: JSON.stringify({ path: '/Forged' }) })).status);
	assert.equal(forged, 401);

	step('create a domain');
	await page.click('nav a[data-page=agents]');
	await page.waitForSelector(`.vrow[data-host="${host}"]`);
	await page.click('#dom-new');
	await page.fill('#domain-name', 'Berlin');
	await page.click('.dialog button:text("Create")');
	await page.waitForSelector('#domain-tree [data-domain="/Berlin"]');

	step('move the agent into it');
	await page.click('#domain-tree [data-domain="/"]');
	const row = `.vrow[data-host="${host}"]`;
	await page.check(`${row} input[type=checkbox]`);
	await page.click('#act-move');
	await page.selectOption('#move-to', '/Berlin');
	await page.click('.dialog button:text("Move")');
	await page.waitForSelector(`${row} div:text("/Berlin")`);
	await page.click('#domain-tree [data-domain="/Berlin"]');
	await page.waitForSelector(row);

	step('switch its scan method and see the agent change');
	await page.waitForSelector(`${row} [data-col=method]:text("conventional")`, { timeout: 60000 });
	await page.check(`${row} input[type=checkbox]`);
	await page.click('#act-method');
	await page.selectOption('#method', 'smart');
	await page.selectOption('#target', 'clients');
	await page.click('.dialog button:text("Apply")');
	await page.waitForSelector(`${row} [data-col=method]:text("smart")`, { timeout: 90000 });

	step('its settings say where each comes from');
	await page.click(`${row} div[title="${host}"]`);
	await page.waitForSelector('#detail tr[data-setting=scan_method] .origin:has-text("set here")');
	await page.waitForSelector('#detail tr[data-setting=roaming] .origin:has-text("inherited from the root")');
	await shot('agents');

	step('the domain shows its inherited settings');
	await page.click('#domain-tree [data-domain="/Berlin"]');
	await page.waitForSelector('#detail [data-scope="domain:/Berlin"] tr[data-setting=scan_method]');

	step('export the domain structure, and import it again');
	const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
	const exported = path.join(shots, 'ward-domains.json');
	await download.saveAs(exported);
	assert.match(fs.readFileSync(exported, "utf8"), /"path": "\/Berlin"/);
	await page.click('#import');
	await page.setInputFiles('#import-file', exported);
	await page.click('.dialog button:text("Import")');
	await page.waitForSelector('.toast:has-text("domain(s) imported")');

	step('add agents: a token for /Berlin, its bundle downloaded');
	await page.click('#enroll');
	await page.selectOption('#enroll-domain', '/Berlin');
	await page.fill('#enroll-days', '3');
	const [bundle] = await Promise.all([page.waitForEvent('download'),
		page.click('.dialog button:text("Create token and download bundle")')]);
	await bundle.saveAs(path.join(shots, 'enroll.bundle'));
	const token = await page.inputValue('#enroll-token');
	assert.match(token, /^[0-9a-f]{64}$/);
	assert.equal(JSON.parse(fs.readFileSync(path.join(shots, 'enroll.bundle'), 'utf8')).token,
		token);
	await page.waitForSelector('#enroll-tokens tr:has-text("/Berlin")');
	await shot('add-agents');
	await page.click('.dialog button:text("Cancel")');
	await page.click('#removed');
	await page.waitForSelector('#removed-clients td:has-text("No removed client is kept.")');
	await page.click('.dialog button:text("Cancel")');

	step('search narrows the list');
	await page.click('#domain-tree [data-domain="/"]');
	await page.fill('#search', 'no-such-host');
	await page.waitForSelector('#selection:has-text("of 0 shown")');
	await page.fill('#search', host);
	await page.waitForSelector(row);

	step('a client moved to another server is shown apart and offered for no action');
	await page.fill('#search', '');
	const moved = '.vrow.moved[data-host="moved-away"]';
	await page.waitForSelector(`${moved} [data-col=state]:has-text("moved")`);
	assert.equal(await page.isDisabled(`${moved} input[type=checkbox]`), true);
	await page.waitForSelector('#domain-tree span[data-moved="/"]:text("1 moved")');
	await page.check('input[aria-label="select all shown"]');
	await page.waitForSelector('#selection:has-text("1 selected of 2 shown")');
	assert.equal(await page.isChecked(`${moved} input[type=checkbox]`), false);
	await page.uncheck('input[aria-label="select all shown"]');
	await page.click(`${moved} div[title="moved-away"]`);
	await page.waitForSelector('#detail #moved-note');
	assert.equal(await page.locator('#detail tr[data-setting]').count(), 0);
	await shot('agents-moved');
	await page.click('#remove-moved');
	await page.click('.dialog button:text("Remove")');
	await page.waitForSelector('.toast:has-text("1 client(s) removed")');
	await page.waitForSelector(moved, { state: 'detached' });
	await page.waitForSelector('#detail', { state: 'detached' });   // its details went too

	step('global agent settings');
	await page.click('nav a[data-page=settings]');
	await page.waitForSelector('#global-settings tr[data-setting="update.allow_update_now"]');
	await page.selectOption('#global-settings tr[data-setting="update.allow_update_now"] select',
		'false');
	await page.click('#global-settings tr[data-setting="update.allow_update_now"] button:text("Save")');
	await page.waitForSelector('.toast:has-text("update.allow_update_now set on the root")');
	await shot('settings');

	step('updates');
	await page.click('nav a[data-page=updates]');
	await page.waitForSelector('#components tr[data-component=virus-pattern]');
	await page.waitForSelector('#signing-key .mono');
	await page.fill('#us-max_downloads', '20');
	await page.click('#save-update-settings');
	await page.waitForSelector('#update-settings .origin:has-text("set here (wardd.conf: 50)")');
	await page.fill('#us-source_dir', '/no/such/dir');
	await page.click('#save-update-settings');
	await page.waitForSelector('#update-settings .error:has-text("not a directory")');
	await shot('updates');

	step('smart protection');
	await page.click('nav a[data-page=smart]');
	await page.waitForSelector('#sps-servers td:text("integrated (wardd)")');
	await page.waitForSelector('#sps-lists');
	await shot('smart-protection');
	// A token for one ward-sps, of its own kind: the bundle is downloaded.
	await page.click('#sps-add');
	const [spsBundle] = await Promise.all([page.waitForEvent('download'),
		page.click('.dialog button:text("Create token and download bundle")')]);
	assert.equal(spsBundle.suggestedFilename(), 'sps.bundle');
	await page.waitForSelector('#sps-token-made p:has-text("for one server")');
	await page.click('.dialog button:text("Cancel")');
	const kinds = await page.evaluate(async () =>
		(await (await fetch('/api/v1/enroll/tokens')).json()).tokens.map((t) => t.kind));
	assert.ok(kinds.includes('sps'), kinds);

	step('logs, filtered, and their CSV export');
	await page.click('nav a[data-page=logs]');
	await page.waitForSelector('#log-table td:has-text("moved 1 clients to /Berlin")');
	await page.selectOption('#log-kind', 'verify');
	await page.waitForSelector('#log-table tbody tr');
	await page.selectOption('#log-kind', 'system');
	await page.waitForSelector('#log-table td:has-text("created domain /Berlin")');
	await shot('logs');
	const href = await page.getAttribute('#log-csv', 'href');
	const csv = await page.request.get(`${url}${href}`);
	assert.equal(csv.status(), 200);
	assert.match(csv.headers()['content-type'], /^text\/csv/);
	const text = await csv.text();
	assert.match(text, /^time,kind,client,hostname,domain,message,source,action,action_result,second_action,second_result,quarantine,task\r\n/);
	assert.match(text, /created domain \/Berlin/);

	step('the logs show the kind task');
	assert.ok(await page.locator('#log-kind option[value=task]').count(), 'no kind task');

	step('the agents list shows real time unavailable, with the reason the agent gave');
	await page.click('nav a[data-page=agents]');
	const rt = `${row} [data-col=realtime] [data-realtime=unavailable]`;
	await page.waitForSelector(rt, { timeout: 60000 });   // the list refreshes every 5 s
	const reason = await page.getAttribute(rt, 'title');
	assert.match(reason, /^no CAP_SYS_ADMIN: /);
	await page.click(`${row} [data-col=method]`);
	await page.waitForSelector('#realtime-reason');
	assert.equal(await page.textContent('#realtime-reason'), reason);
	await page.waitForSelector('#realtime-detail dd:text("detect (files are scanned after ' +
		'they open)")');
	await page.waitForSelector('#last-scan:text("none reported")');
	await page.waitForSelector('#clamd-service:text("off")');
	await shot('agent-protection');

	step('the counters of real time running, as the details show them');
	// A real agent counts only with fanotify (root, a filesystem of the
	// test's own): test_realtime.py; here the rendering of such a status.
	assert.deepEqual(await page.evaluate(async () => {
		const { realtimeDetail } = await import('./js/scans.js');
		const el = realtimeDetail({ state: 'on', mode: 'block', counters: {
			events: 1234, cache_hits: 1000, scans: 234, denials: 2, latency_p50_us: 80,
			latency_p99_us: 2500, custom: 7,
			top_processes: [{ exe: '/usr/bin/tar', scans: 200, scan_us: 90000 }],
			top_paths: [{ path: '/home/user/big\u001b.iso', scans: 3, scan_us: 40000 }] } });
		const text = (sel) => [...el.querySelectorAll(sel)].map((e) => e.textContent);
		return [text('[data-realtime]'), text('#realtime-counters dd'),
			text('#top-processes td'), text('#top-paths td')];
	}), [['on (block)'], ['1,234', '1,000', '234', '2', 'p50 80 µs, p99 2.5 ms', '7'],
		['/usr/bin/tar', '200', '90.0 ms'], ['/home/user/big\\x1b.iso', '3', '40.0 ms']]);
	// And the clamd service's (test_clamd.py: a real one's reach the server).
	assert.equal(await page.evaluate(async () => {
		const { clamdText } = await import('./js/scans.js');
		return clamdText({ state: 'on', requests: 12345, found: 2, errors: 1, unverified: 0,
			cached: 300 });
	}), 'on: 12,345 requests, 2 found, 1 errors, 0 unverified, 300 answered from the cache');

	const taskRow = (id) => `#scan-tasks tr[data-task="${id}"]`;
	// A scan's progress as the console writes it.
	const progress = (files, bytes, detections) => page.evaluate(async ([f, b, d]) => {
		const { progressText } = await import('./js/tasks.js');
		return progressText({ progress: { files: f, bytes: b, detections: d } });
	}, [files, bytes, detections]);
	const counted = ':text-matches("^[1-9][0-9,]* files")';

	step('Scan Now on the selected agent: its live progress, then its result');
	await page.check(`${row} input[type=checkbox]`);
	await page.click('#act-scan');
	await page.selectOption('#scan-target', '0');
	assert.match(await page.textContent('#scan-target option[value="0"]'), /1 selected client/);
	// found/ last: in smart scan its EICAR files wait for the smart
	// protection source's answer, and a scan reports its files in order.
	await page.fill('#scan-paths', `${scans.slow}\n${scans.found}`);
	await page.selectOption('#scan-cpu', 'normal');
	await page.click('.dialog button:text-is("Scan now")');
	await page.waitForSelector('.toast:has-text("Scan Now: 1 task(s) queued")');
	const first = await newestTask('#scan-tasks');
	await page.waitForSelector(`${taskRow(first)} td:text("${scans.slow}, ${scans.found}; ` +
		'cpu normal")');
	await page.waitForSelector(`${taskRow(first)}[data-state=running] [data-col=progress]` +
		counted, { timeout: 60000 });
	await shot('scan-now');
	const result = await progress(scans.files, scans.bytes, 2);
	await page.waitForSelector(`${taskRow(first)}[data-state=completed] [data-col=progress]` +
		`:text("${result}")`, { timeout: 120000 });
	assert.equal(await page.locator(`#cancel-${first}`).count(), 0);
	// The client's details, open since before, follow its last scan.
	await page.waitForSelector(`#last-scan:has-text("Scan Now (task ${first}): completed")`,
		{ timeout: 30000 });
	await page.waitForSelector(`#last-scan:has-text("${result}")`);

	step('a scan of the domain runs, and is cancelled from the console');
	await page.click('#domain-tree [data-domain="/Berlin"]');
	await page.click('#act-scan');
	await page.selectOption('#scan-target', '1');
	assert.match(await page.textContent('#scan-target option[value="1"]'),
		/domain \/Berlin and below/);
	await page.fill('#scan-paths', scans.many);
	await page.click('.dialog button:text-is("Scan now")');
	const second = await newestTask('#scan-tasks', first);
	await page.waitForSelector(`${taskRow(second)}[data-state=running] [data-col=progress]` +
		counted, { timeout: 60000 });
	// Its details: the last scan is this one, running, with its progress.
	await page.click(`${row} [data-col=method]`);
	await page.waitForSelector(`#last-scan:text-matches("^Scan Now .task ${second}.: running, ` +
		'started .*; [1-9][0-9,]* files")');

	step('the running scan cancelled');
	// Whether the console shows "running, cancelling" in between depends on
	// how soon the agent stops: not asserted.
	await page.click(`#cancel-${second}`);
	await page.waitForSelector('.toast:has-text("its agent was told to cancel it")');
	await page.waitForSelector(`${taskRow(second)}[data-state=cancelled]`, { timeout: 60000 });
	await page.waitForSelector(`#last-scan:has-text("Scan Now (task ${second}): cancelled")`,
		{ timeout: 30000 });

	step('Scan Now while the agent runs a scan asked for on its host: it fails, saying why');
	await ask('busy');
	await page.click('#act-scan');
	await page.selectOption('#scan-target', '0');
	await page.fill('#scan-paths', scans.found);
	await page.click('.dialog button:text-is("Scan now")');
	const third = await newestTask('#scan-tasks', second);
	await page.waitForSelector(`${taskRow(third)}[data-state=failed] ` +
		':text("1 scans run already (the most at once)")', { timeout: 30000 });
	await ask('idle');

	step('the quarantine lists what the scan quarantined, the paths escaped');
	await page.click('nav a[data-page=quarantine]');
	const itemOf = async (shown) => (await page.waitForFunction((p) => {
		const r = [...document.querySelectorAll('#q-items tr[data-item]')]
			.find((tr) => tr.querySelector('.qpath').textContent === p);
		return r ? r.dataset.item : false;
	}, shown, { timeout: 60000 })).jsonValue();
	const q1 = `#q-items tr[data-item="${await itemOf(scans.eicar)}"]`;
	const q2 = `#q-items tr[data-item="${await itemOf(scans.evil)}"]`;
	await page.waitForSelector(`${q1} [data-col=state]:has-text("stored")`);
	await page.waitForSelector(`${q1} td:has-text("Demo.Eicar")`);
	await page.waitForSelector(`${q1} td:text-is("scan_now")`);
	assert.equal(await page.locator(`${q2} .qpath .esc`).count(), 2);

	step('control and bidirectional characters from agents are shown escaped');
	assert.equal(await page.evaluate(async () => (await import('./js/dom.js'))
		.safeText('a\u202eb\nc\u0085')), 'a\\u{202e}b\\x0ac\\x85');

	step('a restore onto a file now at that path is refused, and says why');
	await ask('occupy');
	await page.click(`${q1} button:text("Restore...")`);
	await page.click('.dialog button:text-is("Restore")');
	await page.waitForSelector('.toast:has-text("Restore queued: task")');
	const refused = await newestTask('#q-tasks');
	await page.waitForSelector(`#q-tasks tr[data-task="${refused}"] [data-task-state=failed]`,
		{ timeout: 30000 });
	await page.waitForSelector(`${q1} [data-col=task] [data-task-state=failed] .bad`);
	await page.waitForSelector(`${q1} [data-col=state]:has-text("stored")`);

	step('restored with overwrite and exclude: the file is back as it was');
	await page.click(`${q1} button:text("Restore...")`);
	await page.check('#q-overwrite');
	await page.check('#q-exclude');
	await page.click('.dialog button:text-is("Restore")');
	const restore = await newestTask('#q-tasks', refused);
	await page.waitForSelector(`#q-tasks tr[data-task="${restore}"] td:text("overwrite, exclude")`);
	await shot('quarantine');
	await page.waitForSelector(`${q1} [data-col=task] [data-task-state=completed]`,
		{ timeout: 30000 });
	await page.waitForSelector(`${q1} [data-col=state]:has-text("restored")`, { timeout: 30000 });
	await ask('restored');

	step('delete, confirmed, is done by the agent; the state filter narrows the list');
	await page.click(`${q2} button:text("Delete...")`);
	await page.click('.dialog button:text-is("Delete")');
	await page.waitForSelector(`${q2} [data-col=state]:has-text("deleted")`, { timeout: 30000 });
	await page.waitForSelector(`${q2} [data-col=task] [data-task-state=completed]`);
	await page.selectOption('#q-state', 'restored');
	await page.waitForSelector(`${q2}`, { state: 'detached' });
	await page.waitForSelector(q1);
	await page.selectOption('#q-state', '');

	step('the dashboard charts the detections by action');
	await page.click('nav a[data-page=dashboard]');
	await page.waitForSelector('#detections-chart rect[data-action=quarantine]');
	await page.waitForSelector('#chart-legend [data-total=quarantine]:text("quarantined: 2")');
	await shot('dashboard-detections');

	step('the chart counts each detection in its period, by what was done in the end');
	assert.deepEqual(await page.evaluate(async () => {
		const { draw } = await import('./js/chart.js');
		const now = Math.floor(Date.now() / 1000);
		const events = [{ time: now - 900, detail: { action: 'quarantine', action_result: 'ok' } },
			{ time: now - 3 * 86400, detail: { action: 'quarantine', action_result: 'failed',
				second_action: 'delete', second_result: 'ok' } }];
		return ['week', 'day'].map((range) => {
			const { chart, totals } = draw(events, range, now);
			return [totals, [...chart.querySelectorAll('rect')].map((r) =>
				r.getAttribute('data-action'))];
		});
	}), [[{ quarantine: 1, delete: 1 }, ['delete', 'quarantine']], [{ quarantine: 1 },
		['quarantine']]]);

	step('what counts as done about a detection: the second action when the first failed');
	assert.deepEqual(await page.evaluate(async () => {
		const { outcome } = await import('./js/chart.js');
		return [outcome({ action: 'rename', action_result: 'ok' }),
			outcome({ action: 'quarantine', action_result: 'failed', second_action: 'delete',
				second_result: 'ok' }),
			outcome({ action: 'quarantine', action_result: 'failed', second_action: 'delete',
				second_result: 'failed' }),
			outcome({ action: 'deny', action_result: 'failed' }), outcome({})];
	}), ['rename', 'delete', 'failed', 'failed', 'none']);

	step('the logs show the tasks');
	await page.click('nav a[data-page=logs]');
	await page.selectOption('#log-kind', 'task');
	await page.waitForSelector(`#log-table tr[data-kind=task] td:has-text("task ${third} (scan)")`);

	step('administrators: a read-only one added, the own password changed');
	await page.click('nav a[data-page=admins]');
	await page.waitForSelector('#admin-list tr[data-admin=admin]');
	await page.fill('#admin-name', 'auditor');
	await page.selectOption('#admin-role', 'read-only');
	await page.fill('#admin-password', 'auditor password');
	await page.click('#admin-add');
	await page.waitForSelector('#admin-list tr[data-admin=auditor] select:has(option[value="read-only"]:checked)');
	await page.fill('#pw-current', 'not the password');
	await page.fill('#pw-new', 'a new password for admin');
	await page.fill('#pw-again', 'a new password for admin');
	await page.click('#pw-save');
	await page.waitForSelector('#password .error:has-text("wrong current password")');
	await page.fill('#pw-current', password);
	await page.click('#pw-save');
	await page.waitForSelector('.toast:text("Password changed")');
	await shot('administrators');

	step('backups: one made now, listed with the last outcome');
	await page.click('nav a[data-page=backups]');
	await page.waitForSelector('#backup-list td:has-text("No archive yet.")');
	await page.click('#backup-now');
	await page.waitForSelector('.toast:has-text("Backed up to ")', { timeout: 60000 });
	await page.waitForSelector('#backup-list tr[data-archive^="ward-"]');
	await page.waitForSelector('#backup-last:has-text("by admin")');
	await shot('backups');

	step('agent upgrades: a rollout started, the agent it cannot reach listed, cancelled');
	await page.click('nav a[data-page=upgrades]');
	await page.waitForSelector('#upgrade-packages tr[data-version="1.2.2-1"] td:text("debian-12/amd64")');
	await page.waitForSelector('#upgrade-rollout:text("No rollout yet.")');
	await page.selectOption('#upgrade-version', '1.2.2-1');
	await page.fill('#upgrade-batch', '10');
	await page.click('#upgrade-start');
	await page.waitForSelector('.toast:text("Rolling 1.2.2-1 out")');
	await page.waitForSelector(`#upgrade-agents tr[data-state=manual]:has-text("${host}")`);
	await page.waitForSelector('#upgrade-rollout .pill:text("done")', { timeout: 15000 });
	await page.waitForSelector('#upgrade-counts:has-text("Upgraded 0")');
	await shot('agent-upgrades');

	step('posture: the agent non-compliant with the reasons, a policy server\'s token made and revoked');
	await page.click('nav a[data-page=posture]');
	await page.waitForSelector(`#posture-clients tr[data-compliant=false]:has-text("${host}") div[data-check=realtime]`);
	await page.waitForSelector(`#posture-clients tr:has-text("${host}") div[data-check=full_scan]:has-text("no full scan completed in the last 7 days")`);
	await page.selectOption('#posture-only', 'compliant');
	await page.waitForSelector('#posture-clients td:text("None.")');
	await page.selectOption('#posture-only', 'noncompliant');
	await page.waitForSelector(`#posture-clients tr:has-text("${host}")`);
	await page.fill('#posture-token-name', 'radius-1');
	await page.click('#posture-token-make');
	const postureToken = await (await page.waitForSelector('#posture-token-value')).textContent();
	assert.match(postureToken, /^[0-9a-f]{64}$/);
	await page.waitForSelector('#posture-tokens tr[data-token] td:text("radius-1")');
	await shot('posture');
	await page.click('#posture-tokens tr[data-token] button:text("Revoke")');
	await page.waitForSelector('.toast:has-text("revoked")');
	await page.waitForSelector('#posture-tokens tr[data-token]', { state: 'detached' });

	step('deployment: the command for a domain, a deployment in progress, cancelled');
	await page.click('nav a[data-page=deploy]');
	await page.waitForSelector('#deploy-packages tr[data-file="ward-agent_1.2.3-1_amd64.deb"] td:text("served")');
	await page.waitForSelector('#deploy-summary:text("None in progress.")');
	await page.fill('#deploy-domain', '/');
	await page.click('#deploy-make');
	const line = await (await page.waitForSelector('#deploy-line')).textContent();
	assert.match(line, /^curl -fsS --cacert ca\.crt https:\/\/\S+\/deploy\/[0-9a-f]{64}\/install\.sh \| sudo sh$/);
	// A host downloads the script: a deployment in progress, then cancelled.
	const script = new URL(line.split(' ')[4]).pathname;
	assert.equal(await page.evaluate(async (p) => (await fetch(p)).status, script), 200);
	await page.waitForSelector('#deploy-summary:text("1 in progress")', { timeout: 15000 });
	await page.waitForSelector('#deploy-list tr[data-deployment] .pill:text("script")');
	await shot('deployment');
	await page.click('#deploy-list tr[data-deployment] button:text("Cancel")');
	await page.waitForSelector('.toast:text("Deployment cancelled")');
	await page.waitForSelector('#deploy-summary:text("None in progress.")');
	await page.check('#deploy-ended');
	await page.waitForSelector('#deploy-list tr[data-deployment] .pill:text("cancelled")');

	step('alerts: a syslog channel tested, a rule sending by it, the message logged');
	await page.click('nav a[data-page=alerts]');
	await page.waitForSelector('#alert-channels td:has-text("No channel yet.")');
	await page.fill('#ch-name', 'siem');
	await page.selectOption('#ch-kind', 'syslog');
	await page.fill('#ch-config', JSON.stringify({ address: 'udp://127.0.0.1:9', facility: 'local4' }));
	await page.click('#ch-save');
	await page.waitForSelector('#alert-channels tr[data-channel=siem]');
	await page.click('#alert-channels tr[data-channel=siem] button:text("Test")');
	await page.waitForSelector('.toast:text("Test message sent by siem")', { timeout: 30000 });
	await page.fill('#rule-name', 'outbreaks');
	await page.selectOption('#rule-kind', 'outbreak');
	await page.fill('#rule-channels', 'siem');
	await page.click('#rule-save');
	const rule = await (await page.waitForSelector('#alert-rules tr[data-rule=outbreaks]')).textContent();
	assert.ok(rule.includes('{"clients":1,"detections":10,"minutes":60}'), rule);
	await page.waitForSelector('#alert-log tr[data-message] .pill:text("sent")');
	// A bad configuration is refused with the reason.
	await page.fill('#ch-name', 'bad');
	await page.selectOption('#ch-kind', 'webhook');
	await page.fill('#ch-config', JSON.stringify({ url: 'http://plain.example/' }));
	await page.click('#ch-save');
	await page.waitForSelector('main .error:has-text("url: expected an https:// URL")');
	await shot('alerts');

	step('licenses: the evaluation on every page, a license activated, a forged one refused');
	await page.waitForSelector('#license-notices .notice[data-services~=antivirus]:has-text("licenses (evaluation) expire on")');
	await page.click('nav a[data-page=licenses]');
	await page.waitForSelector('#license-services tr[data-service=smart-scan] .pill:text("active")');
	await page.click('#license-add');
	await page.fill('#license-text', process.env.WARD_LICENSE);
	await page.click('.dialog button:text("Activate")');
	await page.waitForSelector('.toast:text("License browser-site activated")');
	await page.waitForSelector('#license-list tr[data-license=browser-site] td:text("Browser Test Ltd")');
	// Covered for a year now: nothing to warn of.
	await page.waitForSelector('#license-notices .notice', { state: 'detached' });
	// The evaluation's 1000 seats and these 50; the agent uses one.
	await page.waitForSelector('#license-services tr[data-service=antivirus] td:text("1 of 1050")');
	await shot('licenses');
	const forgedLicense = JSON.parse(process.env.WARD_LICENSE);
	forgedLicense.license = forgedLicense.license.replace('"seats":50', '"seats":5000');
	await page.click('#license-add');
	await page.fill('#license-text', JSON.stringify(forgedLicense));
	await page.click('.dialog button:text("Activate")');
	await page.waitForSelector('.dialog .error:has-text("the signature does not verify")');
	await page.click('.dialog button:text("Cancel")');
	await page.click('#license-list tr[data-license=browser-site] button:text("Remove")');
	await page.click('.dialog button:text("Remove")');
	await page.waitForSelector('.toast:text("License browser-site removed")');
	await page.waitForSelector('#license-list tr[data-license=browser-site]', { state: 'detached' });

	step('sign out');
	await page.click('#signout');
	await page.waitForSelector('form.signin');
	const after = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
	assert.equal(after, 401);

	step('a read-only administrator is shown nothing that changes');
	await page.fill('#user', 'auditor');
	await page.fill('#password', 'auditor password');
	await page.click('form.signin button[type=submit]');
	await page.waitForSelector('#who:text("auditor (read-only)")');
	await page.click('nav a[data-page=agents]');
	await page.waitForSelector('#refresh');
	for (const id of ['#dom-new', '#enroll', '#act-move', '#act-verify', '#import', '#act-scan'])
		assert.equal(await page.isVisible(id), false, `${id} is shown to a read-only administrator`);
	await page.click('nav a[data-page=quarantine]');
	await page.waitForSelector('#q-items tr[data-item]');
	assert.equal(await page.locator('#q-items button:visible').count(), 0);
	await page.click('nav a[data-page=updates]');
	await page.waitForSelector('#source');
	assert.equal(await page.isVisible('#import-now'), false);
	await page.click('nav a[data-page=backups]');
	await page.waitForSelector('#backup-list tr[data-archive]');
	assert.equal(await page.isVisible('#backup-now'), false);
	await page.click('nav a[data-page=deploy]');
	await page.waitForSelector('#deploy-summary');
	assert.equal(await page.isVisible('#deploy-make'), false);
	await page.click('nav a[data-page=alerts]');
	await page.waitForSelector('#alert-channels tr[data-channel=siem]');
	assert.equal(await page.isVisible('#ch-save'), false);
	assert.equal(await page.locator('#alert-channels button:visible').count(), 0);
	await page.click('nav a[data-page=admins]');
	await page.waitForSelector('#admin-list tr[data-admin=auditor]');
	assert.equal(await page.isVisible('#admin-add'), false);
	assert.equal(await page.isVisible('#remove-admin'), false);
	assert.equal(await page.isVisible('#pw-save'), true);
	await shot('read-only');
	await page.click('#signout');
	await page.waitForSelector('form.signin');

	step('the old password of admin is refused, the new one accepted');
	await page.fill('#user', 'admin');
	await page.fill('#password', password);
	await page.click('form.signin button[type=submit]');
	await page.waitForSelector('form.signin .error:has-text("Wrong user name or password")');
	await page.fill('#password', 'a new password for admin');
	await page.click('form.signin button[type=submit]');
	await page.waitForSelector('#who:text-is("admin")');
	assert.equal(await page.isVisible('#admin-add'), true);

	assert.deepEqual(problems, []);
	console.log('ok: every step passed');
} catch (e) {
	await shot('failure').catch(() => {});
	console.error(`FAILED: ${e.stack || e}`);
	console.error(problems.join('\n'));
	process.exitCode = 1;
} finally {
	await browser.close();
	// An open standard input would keep node running.
	input.close();
	process.stdin.destroy();
}
