// SPDX-License-Identifier: BSD-2-Clause
// Open a profile in the viewer people use, in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core from web/node_modules), take a screenshot and report what is drawn,
// as JSON on stdout; the Python test judges.
//
//   node tests/web/view_check.mjs CONFIG.json
// CONFIG: { kind: "svg" | "speedscope", url, hot (a function name), shot (PNG path) }
//   svg:        the page is our flame graph SVG: report the frames' titles and widths, then
//               click the hot function's widest frame and report its width (zoom).
//   speedscope: the page is speedscope's index.html#profileURL=...: report the page's text in
//               the sandwich view (function names in its table) and whether a canvas is drawn.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'web', 'package.json'));
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = { errors: [] };
const browser = await chromium.launch({
	executablePath: cfg.chromium || '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync',
		'--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
});
try {
	const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
	page.on('pageerror', (e) => out.errors.push(String(e)));
	await page.goto(cfg.url);
	if (cfg.kind === 'svg') {
		await page.waitForFunction(() => window.pysamp !== undefined, null, { timeout: 20000 });
		const frames = () => page.evaluate(() => [...document.querySelectorAll('#frames > g')].map((g) => ({
			title: g.querySelector('title').textContent,
			width: g.querySelector('rect').getBoundingClientRect().width,
		})));
		out.frames = await frames();
		out.svgWidth = await page.evaluate(() => document.documentElement.getBoundingClientRect().width);
		await page.screenshot({ path: cfg.shot });
		const hot = out.frames.filter((f) => f.title.startsWith(cfg.hot + ' '))
			.sort((a, b) => b.width - a.width)[0];
		if (hot) {
			const idx = out.frames.indexOf(hot);
			await page.locator('#frames > g').nth(idx).locator('rect').click();
			await page.waitForTimeout(300);
			out.zoomedWidth = (await frames())[idx].width;
			out.matched = await page.evaluate((h) => window.pysamp.search('^' + h + ' '), cfg.hot);
		}
	} else {
		await page.waitForFunction((h) => document.body && document.body.innerText.includes(h),
			cfg.hot, { timeout: 30000 }).catch(() => {});
		await page.waitForTimeout(1000);
		out.text = await page.evaluate(() => document.body.innerText);
		out.canvases = await page.evaluate(() => document.querySelectorAll('canvas').length);
		await page.screenshot({ path: cfg.shot });
	}
} catch (e) {
	out.errors.push(String(e && e.stack || e));
}
await browser.close();
process.stdout.write(JSON.stringify(out) + '\n');
