// console.mjs -- times the web console in Debian's chromium (headless,
// driven by playwright-core from tests/browser/node_modules) against a
// wardd holding many agents. console.py starts both and passes:
// WARD_URL, WARD_PASSWORD, WARD_AGENTS (how many), WARD_ROUNDS.
// Prints one JSON object of medians (milliseconds) on stdout.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const url = process.env.WARD_URL;
const agents = Number(process.env.WARD_AGENTS);
const rounds = Number(process.env.WARD_ROUNDS || 5);

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
	args: ['--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true,
	viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
await page.goto(`${url}/console/`);
await page.fill('#password', process.env.WARD_PASSWORD);
await page.click('form.signin button[type=submit]');
await page.waitForSelector('#dashboard #card-states');

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timed(fn) {
	const t = performance.now();
	await fn();
	return performance.now() - t;
}
const shown = (n) => `#selection:has-text("of ${n} shown")`;

const out = { agents, rounds };
const r = { dashboard: [], agents: [], search: [], method: [], clear: [], scroll: [],
	select: [] };
for (let i = 0; i < rounds; i++) {
	r.dashboard.push(await timed(async () => {
		await page.click('nav a[data-page=settings]');
		await page.waitForSelector('#global-settings');
		await page.click('nav a[data-page=dashboard]');
		await page.waitForSelector(`#card-states .big:text("${agents}")`);
	}));
	r.agents.push(await timed(async () => {
		await page.click('nav a[data-page=agents]');
		await page.waitForSelector(shown(agents), { timeout: 60000 });
		await page.waitForSelector('.vrow');
	}));
	r.search.push(await timed(async () => {
		await page.fill('#search', `loadgen-${agents - 1}`);
		await page.waitForSelector(shown(1));
	}));
	r.clear.push(await timed(async () => {
		await page.fill('#search', '');
		await page.waitForSelector(shown(agents));
	}));
	const smart = Math.ceil(agents / 3);
	r.method.push(await timed(async () => {
		await page.selectOption('#f-method', 'smart');
		await page.waitForSelector(shown(smart));
	}));
	await page.selectOption('#f-method', '');
	await page.waitForSelector(shown(agents));
	r.select.push(await timed(async () => {
		await page.check('.vhead input[type=checkbox]');
		await page.waitForSelector(`#selection:has-text("${agents} selected")`);
	}));
	await page.uncheck('.vhead input[type=checkbox]');
	r.scroll.push(await timed(async () => {
		await page.evaluate(() => {
			const b = document.getElementById('client-rows');
			b.scrollTop = b.scrollHeight;
		});
		await page.waitForSelector(`.vrow[data-host="loadgen-${agents - 1}"], ` +
			'.vrow[data-host^="loadgen-"]:last-child');
	}));
	out.rows_in_page = await page.evaluate(() => document.querySelectorAll('.vrow').length);
}
for (const [k, v] of Object.entries(r))
	out[k] = Math.round(median(v));
out.heap_mb = Math.round((await page.evaluate(() => performance.memory ?
	performance.memory.usedJSHeapSize : 0)) / 1048576);
console.log(JSON.stringify(out));
await browser.close();
