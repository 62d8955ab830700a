// SPDX-License-Identifier: BSD-2-Clause
// Drive pysamp-collector's web UI in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core from web/node_modules) and report what a user would see, as JSON on stdout.
// The Python test (tests/integration/test_webui.py) holds the ground truth and judges.
//
//   node tests/web/ui_check.mjs CONFIG.json
// CONFIG: { base, app, a: [from, until], b: [from, until], fa, fb (function names of the two
//           phases), out (screenshot directory), chromium (optional path) }
// Each step records its observations; a step that throws records { error } and the run goes on.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {};
const consoleErrors = [];

function rgb(fill) {
	let m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(fill || '');
	if (m)
		return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
	m = /rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)/.exec(fill || '');
	return m ? [+m[1], +m[2], +m[3]] : null;
}

// Every frame of the flame graph in the iframe: title text, rect geometry and fill, visibility.
async function frames(page) {
	const fr = page.frameLocator('#flame');
	return fr.locator('svg').evaluate((svg) => {
		const res = [];
		for (const g of svg.querySelectorAll('g')) {
			const t = g.querySelector(':scope > title');
			const r = g.querySelector(':scope > rect');
			if (!t || !r)
				continue;
			const box = r.getBoundingClientRect();
			const cs = getComputedStyle(g);
			res.push({
				title: t.textContent,
				width: box.width,
				x: box.x,
				fill: r.getAttribute('fill') || getComputedStyle(r).fill,
				visible: cs.display !== 'none' && cs.visibility !== 'hidden' && box.width > 0,
			});
		}
		return { frames: res, width: svg.getBoundingClientRect().width };
	});
}

// The widest frame whose label starts with name (a function has one frame per line and caller).
function widest(f, name) {
	let best = null;
	for (const x of f.frames)
		if (x.title.startsWith(name) && (!best || x.width > best.width))
			best = x;
	return best;
}

async function ready(page) {
	await page.waitForFunction(() => {
		const f = document.getElementById('flame');
		return f && f.contentWindow && f.contentWindow.pysamp &&
			document.querySelectorAll('#top tbody tr').length > 0;
	}, null, { timeout: 30000 });
	await page.waitForTimeout(300);
}

async function step(name, fn) {
	try {
		out[name] = await fn();
	} catch (e) {
		out[name] = { error: String(e && e.stack || e) };
	}
}

const browser = await chromium.launch({
	executablePath: cfg.chromium || '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
fs.mkdirSync(cfg.out, { recursive: true });
const shot = (n) => page.screenshot({ path: path.join(cfg.out, n), fullPage: true });
const q = (o) => new URLSearchParams(o).toString();

await step('flame', async () => {
	await page.goto(`${cfg.base}/?${q({ app: cfg.app, from: cfg.a[0], until: cfg.b[1] })}`);
	await ready(page);
	const f = await frames(page);
	const top = await page.$$eval('#top tbody tr', (rows) =>
		rows.slice(0, 10).map((r) => [...r.cells].map((c) => c.textContent)));
	await shot('flame.png');
	return {
		app: await page.$eval('#app', (s) => s.value),
		summary: await page.$eval('#summary', (s) => s.textContent),
		status: await page.$eval('#status', (s) => s.textContent),
		timeline: await page.$$eval('#timeline canvas', (c) => c.length),
		svgWidth: f.width,
		frames: f.frames.map((x) => x.title),
		top,
	};
});

await step('zoom', async () => {
	const fr = page.frameLocator('#flame');
	const g = fr.locator('#frames > g', { has: fr.locator(`title:text-matches("^${cfg.fa}\\\\b")`) }).first();
	await g.locator('rect').click();
	await page.waitForTimeout(400);
	const f = await frames(page);
	const a = widest(f, cfg.fa);
	const b = widest(f, cfg.fb);
	await shot('zoom.png');
	return { svgWidth: f.width, alpha: a, beta: b, url: page.url() };
});

await step('reset', async () => {
	await page.click('#reset-zoom');
	await page.waitForTimeout(300);
	const f = await frames(page);
	return { beta: widest(f, cfg.fb) };
});

await step('search', async () => {
	const before = await frames(page);
	await page.fill('#search', cfg.fb);
	await page.waitForTimeout(700);
	const after = await frames(page);
	const changed = after.frames.filter((x, i) => before.frames[i] && x.fill !== before.frames[i].fill)
		.map((x) => x.title);
	await shot('search.png');
	return { matched: await page.$eval('#matched', (s) => s.textContent), changed, url: page.url() };
});

await step('topClick', async () => {
	await page.fill('#search', '');
	await page.waitForTimeout(400);
	const row = page.locator('#top tbody tr').first();
	const name = await row.locator('td').first().textContent();
	await row.click();
	await page.waitForTimeout(400);
	return {
		name,
		search: await page.$eval('#search', (s) => s.value),
		matched: await page.$eval('#matched', (s) => s.textContent),
		selected: await page.$$eval('#top tbody tr.selected', (r) => r.length),
	};
});

await step('export', async () => {
	// Downloads through the export links: pprof (gzip) and folded.
	const res = {};
	for (const f of ['pprof', 'folded']) {
		const [dl] = await Promise.all([
			page.waitForEvent('download', { timeout: 20000 }),
			page.click(`.exports a[data-format="${f}"]`),
		]);
		const p = await dl.path();
		const buf = fs.readFileSync(p);
		res[f] = { name: dl.suggestedFilename(), size: buf.length, head: [...buf.subarray(0, 2)],
			text: f === 'folded' ? buf.toString('utf8').slice(0, 2000) : undefined };
	}
	return res;
});

await step('drag', async () => {
	const over = await page.locator('#timeline .u-over').boundingBox();
	const y = over.y + over.height / 2;
	await page.mouse.move(over.x + over.width * 0.3, y);
	await page.mouse.down();
	await page.mouse.move(over.x + over.width * 0.5, y, { steps: 8 });
	await page.mouse.move(over.x + over.width * 0.6, y, { steps: 8 });
	await page.mouse.up();
	await page.waitForTimeout(300);
	await ready(page);
	const u = new URL(page.url());
	return { from: u.searchParams.get('from'), until: u.searchParams.get('until') };
});

await step('diff', async () => {
	await page.goto(`${cfg.base}/?${q({ app: cfg.app, compare: 1, bfrom: cfg.a[0], buntil: cfg.a[1],
		from: cfg.b[0], until: cfg.b[1] })}`);
	await ready(page);
	// The baseline interval has only phase A's function and the compared one only phase B's:
	// the diff graph is drawn with B's widths, so A's function is not drawn; widen the compared
	// interval to both phases so both appear, one shrinking and one growing.
	await page.fill('#from', String(cfg.a[0]));
	await page.fill('#until', String(cfg.b[1]));
	await page.dispatchEvent('#until', 'change');
	await page.waitForTimeout(500);
	await ready(page);
	const f = await frames(page);
	const a = widest(f, cfg.fa);
	const b = widest(f, cfg.fb);
	await shot('diff.png');
	return {
		alpha: a && { title: a.title, rgb: rgb(a.fill) },
		beta: b && { title: b.title, rgb: rgb(b.fill) },
		topHead: await page.$$eval('#top thead th', (t) => t.map((x) => x.textContent)),
		url: page.url(),
	};
});

await step('shared', async () => {
	// A shared link restores the view: app, interval, search and zoom (the label the zoom step
	// put in the URL).
	const x = out.zoom && out.zoom.url ? new URL(out.zoom.url).searchParams.get('x') : cfg.fa;
	await page.goto(`${cfg.base}/?${q({ app: cfg.app, from: cfg.a[0], until: cfg.b[1], s: cfg.fa, x })}`);
	await ready(page);
	await page.waitForTimeout(300);
	const f = await frames(page);
	const a = widest(f, cfg.fa);
	return {
		x,
		search: await page.$eval('#search', (s) => s.value),
		matched: await page.$eval('#matched', (s) => s.textContent),
		alphaWidth: a && a.width, svgWidth: f.width,
	};
});

out.consoleErrors = consoleErrors;
await browser.close();
process.stdout.write(JSON.stringify(out) + '\n');
