/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pysamp-collector's web UI: pick an application and labels, see samples over time, drag to
 * select an interval, read its flame graph (drawn by the collector as an interactive SVG,
 * /render?format=svg) and its top functions, or compare it with a baseline interval
 * (/api/diff?format=svg). The whole view lives in the URL (app, labels, from, until, bfrom,
 * buntil, s, x), so a link shares it.
 *
 * Everything the collector returns is data from many hosts: it is only ever put in the page
 * as text (textContent, option values), never as HTML.
 */
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
	app: '',
	labels: '',      /* "k=v,k2=v2": every item must match */
	from: 'now-1h',
	until: 'now',
	compare: false,
	bfrom: '',
	buntil: '',
	s: '',           /* search regex */
	x: '',           /* zoomed frame label */
	live: false,     /* reload every 10 s while the interval ends at now */
};
let liveTimer = null;
let series = [];
let plot = null;
let token = sessionStorage.getItem('pysamp-token') || '';
let loadSeq = 0;
let topRows = [];
let topSort = 'self';

/* ---- URL state ---- */

function readUrl() {
	const p = new URLSearchParams(location.search);
	for (const k of ['app', 'labels', 'from', 'until', 'bfrom', 'buntil', 's', 'x'])
		if (p.has(k))
			state[k] = p.get(k);
	state.compare = p.get('compare') === '1' || (p.has('bfrom') && p.has('buntil'));
	state.live = p.get('live') === '1';
}

function writeUrl() {
	const p = new URLSearchParams();
	for (const k of ['app', 'labels', 'from', 'until'])
		if (state[k])
			p.set(k, state[k]);
	if (state.compare) {
		p.set('compare', '1');
		if (state.bfrom) p.set('bfrom', state.bfrom);
		if (state.buntil) p.set('buntil', state.buntil);
	}
	if (state.s) p.set('s', state.s);
	if (state.x) p.set('x', state.x);
	if (state.live) p.set('live', '1');
	history.replaceState(null, '', '?' + p.toString());
}

/* ---- times: Unix seconds, now, now-N[smhd], or a local date "YYYY-MM-DD HH:MM[:SS]" ---- */

function parseTime(v, now) {
	v = (v || '').trim();
	if (/^\d+$/.test(v))
		return Number(v);
	let m = /^now(?:-(\d+)([smhd]?))?$/.exec(v);
	if (m) {
		const mul = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] || ''];
		return now - (m[1] ? Number(m[1]) * mul : 0);
	}
	m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d))?$/.exec(v);
	if (m)
		return Math.floor(new Date(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) / 1000);
	return NaN;
}

/* What the collector accepts: Unix seconds and now-N (s, m, h, d are converted here). */
function apiTime(v) {
	const now = Math.floor(Date.now() / 1000);
	const m = /^now(?:-(\d+)([smhd]?))?$/.exec((v || '').trim());
	if (m) {
		const mul = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] || ''];
		return m[1] ? 'now-' + Number(m[1]) * mul : 'now';
	}
	const t = parseTime(v, now);
	return Number.isFinite(t) ? String(t) : null;
}

function fmtTime(t) {
	const d = new Date(t * 1000);
	const pad = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
		`${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/* ---- HTTP ---- */

async function api(path, params, as) {
	const url = path + '?' + new URLSearchParams(params).toString();
	const headers = token ? { Authorization: 'Bearer ' + token } : {};
	const r = await fetch(url, { headers });
	if (r.status === 401) {
		const t = prompt('This collector needs its token:');
		if (t) {
			token = t.trim();
			sessionStorage.setItem('pysamp-token', token);
			return api(path, params, as);
		}
	}
	if (!r.ok)
		throw new Error(`${path}: ${r.status} ${(await r.text()).trim().slice(0, 300)}`);
	if (as === 'top') /* functions, and the selection's total from the header */
		return { rows: await r.json(), total: Number(r.headers.get('X-Pysamp-Samples')) || 0 };
	return as === 'json' ? r.json() : as === 'blob' ? r.blob() : r.text();
}

function selection() {
	return `${state.app}{${state.labels}}`;
}

function setStatus(msg, isError) {
	const s = $('status');
	s.textContent = msg || '';
	s.className = isError ? 'error' : '';
}

/* ---- application and label pickers ---- */

function fillApps() {
	const sel = $('app');
	const apps = [...new Set(series.map((s) => s.app))].sort();
	sel.replaceChildren();
	for (const a of apps) {
		const o = document.createElement('option');
		o.value = a;
		o.textContent = a;
		sel.append(o);
	}
	if (!apps.length) {
		const o = document.createElement('option');
		o.textContent = '(no data yet)';
		o.value = '';
		sel.append(o);
	}
	if (!apps.includes(state.app)) {
		/* the busiest application first */
		const busiest = {};
		for (const s of series)
			busiest[s.app] = (busiest[s.app] || 0) + s.samples;
		state.app = apps.sort((a, b) => busiest[b] - busiest[a])[0] || '';
	}
	sel.value = state.app;
	fillLabels();
}

function splitLabels(s) {
	const out = [];
	for (const item of (s || '').split(',')) {
		const eq = item.indexOf('=');
		if (eq > 0)
			out.push([item.slice(0, eq), item.slice(eq + 1)]);
	}
	return out;
}

function fillLabels() {
	const box = $('labels');
	const keys = new Map();
	for (const s of series) {
		if (s.app !== state.app)
			continue;
		for (const [k, v] of splitLabels(s.labels)) {
			if (!keys.has(k))
				keys.set(k, new Set());
			keys.get(k).add(v);
		}
	}
	const chosen = new Map(splitLabels(state.labels));
	box.replaceChildren();
	for (const k of [...keys.keys()].sort()) {
		const lab = document.createElement('label');
		const sel = document.createElement('select');
		sel.dataset.key = k;
		const any = document.createElement('option');
		any.value = '';
		any.textContent = 'any';
		sel.append(any);
		for (const v of [...keys.get(k)].sort()) {
			const o = document.createElement('option');
			o.value = v;
			o.textContent = v;
			sel.append(o);
		}
		sel.value = chosen.get(k) || '';
		sel.addEventListener('change', onLabelChange);
		lab.append(document.createTextNode(k + ' '), sel);
		box.append(lab);
	}
}

function onLabelChange() {
	const items = [];
	for (const sel of $('labels').querySelectorAll('select'))
		if (sel.value)
			items.push(`${sel.dataset.key}=${sel.value}`);
	state.labels = items.join(',');
	state.x = '';
	load();
}

/* ---- timeline ---- */

function drawBands(u) {
	const now = Math.floor(Date.now() / 1000);
	const band = (f, t, color) => {
		const a = parseTime(f, now), b = parseTime(t, now);
		if (!Number.isFinite(a) || !Number.isFinite(b))
			return;
		const x0 = u.valToPos(a, 'x', true), x1 = u.valToPos(b, 'x', true);
		u.ctx.save();
		u.ctx.fillStyle = color;
		u.ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
		u.ctx.restore();
	};
	if (state.compare)
		band(state.bfrom, state.buntil, 'rgba(40, 90, 220, 0.15)');
}

let shiftDown = false;
window.addEventListener('keydown', (e) => { if (e.key === 'Shift') shiftDown = true; });
window.addEventListener('keyup', (e) => { if (e.key === 'Shift') shiftDown = false; });

function onSelect(u) {
	if (u.select.width < 2)
		return;
	const a = Math.floor(u.posToVal(u.select.left, 'x'));
	const b = Math.ceil(u.posToVal(u.select.left + u.select.width, 'x'));
	u.setSelect({ left: 0, width: 0 }, false);
	if (state.compare && shiftDown) {
		state.bfrom = String(a);
		state.buntil = String(b);
	} else {
		state.from = String(a);
		state.until = String(b);
	}
	state.x = '';
	load();
}

function drawTimeline(points, from, until) {
	/* points: [t, count, width]; rate = count / width; missing buckets are zero */
	const xs = [], ys = [];
	let prevEnd = null;
	for (const [t, c, w0] of points) {
		const w = w0 || 10;
		if (prevEnd !== null && t > prevEnd) {
			xs.push(prevEnd, t - 1);
			ys.push(0, 0);
		}
		xs.push(t, t + w - 1);
		ys.push(c / w, c / w);
		prevEnd = t + w;
	}
	const box = $('timeline');
	const opts = {
		width: Math.max(400, box.clientWidth || 1000),
		height: 150,
		scales: { x: { time: true, min: from, max: until },
			y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
		series: [{}, { label: 'samples/s', stroke: '#c0392b', fill: 'rgba(192, 57, 43, 0.15)', width: 1 }],
		axes: [{}, { size: 60 }],
		cursor: { drag: { x: true, y: false, setScale: false } },
		legend: { show: true },
		hooks: { setSelect: [onSelect], draw: [drawBands] },
	};
	if (plot)
		plot.destroy();
	plot = new uPlot(opts, [xs, ys], box);
	plot.over.addEventListener('dblclick', () => {
		/* zoom out: twice the interval, centred */
		const span = until - from;
		state.from = String(Math.max(0, from - Math.ceil(span / 2)));
		state.until = String(until + Math.ceil(span / 2));
		load();
	});
}

/* ---- flame graph (the collector's SVG in a same-origin frame) ---- */

function flameApi() {
	const w = $('flame').contentWindow;
	return w && w.pysamp ? w.pysamp : null;
}

function applySearch() {
	const f = flameApi();
	if (!f)
		return;
	if (state.s) {
		let frac = 0;
		try {
			frac = f.search(state.s);
		} catch (e) {
			$('matched').textContent = 'bad regex';
			return;
		}
		$('matched').textContent = `matched ${(100 * frac).toFixed(1)}%`;
	} else {
		f.resetSearch();
		$('matched').textContent = '';
	}
	for (const tr of $('top').tBodies[0].rows)
		tr.classList.toggle('selected', state.s !== '' && tr.dataset.re === state.s);
}

function showSvg(text) {
	const frame = $('flame');
	const old = frame.dataset.url;
	const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
	frame.dataset.url = url;
	frame.onload = () => {
		const f = flameApi();
		if (f && state.x && !f.zoomTo(state.x))
			state.x = '';
		applySearch();
		/* follow zooms made inside the graph so the URL keeps them */
		const doc = frame.contentDocument;
		if (doc)
			doc.addEventListener('click', () => setTimeout(() => {
				const g = flameApi();
				state.x = g && g.zoomed ? g.zoomed() || '' : '';
				writeUrl();
			}, 0));
		frame.style.height = Math.max(200, (doc && doc.documentElement.getBoundingClientRect().height) || 400) + 'px';
	};
	frame.src = url;
	if (old)
		URL.revokeObjectURL(old);
}

/* ---- top functions ---- */

function escapeRe(s) {
	return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function renderTop() {
	const head = $('top').tHead.rows[0];
	const body = $('top').tBodies[0];
	const cols = state.compare
		? [['name', 'Function'], ['self', 'Self (interval)'], ['bself', 'Self (baseline)'], ['delta', 'Change (pp)'], ['total', 'Total (interval)']]
		: [['name', 'Function'], ['self', 'Self'], ['selfp', 'Self %'], ['total', 'Total'], ['totalp', 'Total %']];
	head.replaceChildren();
	for (const [k, title] of cols) {
		const th = document.createElement('th');
		th.textContent = title + (topSort === k ? ' ▾' : '');
		th.dataset.key = k;
		th.addEventListener('click', () => { topSort = k; renderTop(); });
		head.append(th);
	}
	const key = { selfp: 'self', totalp: 'total' }[topSort] || topSort;
	const rows = [...topRows].sort((a, b) =>
		key === 'name' ? a.name.localeCompare(b.name)
			: key === 'delta' ? Math.abs(b.delta) - Math.abs(a.delta)
				: b[key] - a[key]);
	body.replaceChildren();
	for (const r of rows.slice(0, 200)) {
		const tr = document.createElement('tr');
		tr.dataset.re = '^' + escapeRe(r.name) + '$';
		const cells = state.compare
			? [r.name, r.self, r.bself, (r.delta >= 0 ? '+' : '') + r.delta.toFixed(2), r.total]
			: [r.name, r.self, r.selfp.toFixed(2), r.total, r.totalp.toFixed(2)];
		for (const c of cells) {
			const td = document.createElement('td');
			td.textContent = String(c);
			tr.append(td);
		}
		if (state.compare)
			tr.classList.add(r.delta > 0.05 ? 'worse' : r.delta < -0.05 ? 'better' : 'same');
		tr.addEventListener('click', () => {
			state.s = state.s === tr.dataset.re ? '' : tr.dataset.re;
			$('search').value = state.s;
			applySearch();
			writeUrl();
		});
		body.append(tr);
	}
	$('top-title').textContent = state.compare ? 'Functions by change of self share' : 'Top functions';
}

/* ---- loading a view ---- */

async function load() {
	const seq = ++loadSeq;
	$('from').value = state.from;
	$('until').value = state.until;
	$('bfrom').value = state.bfrom;
	$('buntil').value = state.buntil;
	$('compare').checked = state.compare;
	$('baseline-row').hidden = !state.compare;
	$('search').value = state.s;
	$('live').checked = state.live;
	clearTimeout(liveTimer);
	if (state.live && /^now/.test(state.until.trim()))
		liveTimer = setTimeout(async () => { await loadSeries(); load(); }, 10000);
	writeUrl();
	if (!state.app) {
		setStatus('No profiles stored yet: point an agent at this collector (pysamp-bpf --all --push http://HOST:PORT).');
		return;
	}
	const now = Math.floor(Date.now() / 1000);
	const from = apiTime(state.from), until = apiTime(state.until);
	if (from === null || until === null) {
		setStatus('From/until: Unix seconds, now, now-15m, now-2h, now-1d or YYYY-MM-DD HH:MM', true);
		return;
	}
	let bfrom = null, buntil = null;
	if (state.compare) {
		if (!state.bfrom || !state.buntil) {
			/* default baseline: the same length just before the interval */
			const a = parseTime(state.from, now), b = parseTime(state.until, now);
			state.bfrom = String(a - (b - a));
			state.buntil = String(a);
			$('bfrom').value = state.bfrom;
			$('buntil').value = state.buntil;
			writeUrl();
		}
		bfrom = apiTime(state.bfrom);
		buntil = apiTime(state.buntil);
		if (bfrom === null || buntil === null) {
			setStatus('Baseline: Unix seconds, now-N or YYYY-MM-DD HH:MM', true);
			return;
		}
	}
	const sel = { query: selection(), from, until };
	const width = Math.max(400, Math.min(4000, Math.floor($('flame').clientWidth - 4)));
	setStatus('Loading…');
	try {
		const tf = parseTime(state.from, now), tu = parseTime(state.until, now);
		const wide = state.compare ? { query: selection(), from: String(Math.min(tf, parseTime(state.bfrom, now))), until } : sel;
		const [timeline, top, svg, btop] = await Promise.all([
			api('api/timeline', wide, 'json'),
			api('api/top', { ...sel, limit: 5000 }, 'top'),
			state.compare
				? api('api/diff', { query: selection(), from: bfrom, until: buntil, from2: from, until2: until, format: 'svg', width })
				: api('render', { ...sel, format: 'svg', width }),
			state.compare ? api('api/top', { query: selection(), from: bfrom, until: buntil, limit: 5000 }, 'top') : null,
		]);
		if (seq !== loadSeq)
			return;
		const wideFrom = Number(wide.from) || tf;
		drawTimeline(timeline, wideFrom, tu);
		const sum = top.total, total = sum;
		$('summary').textContent = `${selection()}  ${fmtTime(tf)} – ${fmtTime(tu)}  ${sum} samples`;
		if (state.compare) {
			const btotal = btop.total || 1;
			const bmap = new Map(btop.rows.map((r) => [r.name, r.self]));
			const names = new Set([...top.rows.map((r) => r.name), ...btop.rows.map((r) => r.name)]);
			const cur = new Map(top.rows.map((r) => [r.name, r]));
			topRows = [...names].map((n) => {
				const r = cur.get(n) || { self: 0, total: 0 };
				const bs = bmap.get(n) || 0;
				return {
					name: n, self: r.self, total: r.total, bself: bs,
					delta: 100 * (r.self / (total || 1) - bs / btotal),
				};
			});
			if (topSort === 'selfp' || topSort === 'totalp') topSort = 'delta';
		} else {
			topRows = top.rows.map((r) => ({
				name: r.name, self: r.self, total: r.total,
				selfp: 100 * r.self / (total || 1), totalp: 100 * r.total / (total || 1),
			}));
			if (topSort === 'bself' || topSort === 'delta') topSort = 'self';
		}
		renderTop();
		showSvg(svg);
		setStatus(sum ? '' : 'No samples in this interval.');
	} catch (e) {
		if (seq === loadSeq)
			setStatus(String(e.message || e), true);
	}
}

async function loadSeries() {
	try {
		series = await api('api/series', {}, 'json');
	} catch (e) {
		setStatus(String(e.message || e), true);
		series = [];
	}
	fillApps();
}

async function download(path, params, name) {
	try {
		const blob = await api(path, params, 'blob');
		const a = document.createElement('a');
		a.href = URL.createObjectURL(blob);
		a.download = name;
		a.click();
		setTimeout(() => URL.revokeObjectURL(a.href), 1000);
	} catch (e) {
		setStatus(String(e.message || e), true);
	}
}

function init() {
	readUrl();
	$('app').addEventListener('change', () => {
		state.app = $('app').value;
		state.labels = '';
		state.x = '';
		fillLabels();
		load();
	});
	const onTime = () => {
		state.from = $('from').value.trim();
		state.until = $('until').value.trim();
		state.bfrom = $('bfrom').value.trim();
		state.buntil = $('buntil').value.trim();
		load();
	};
	for (const id of ['from', 'until', 'bfrom', 'buntil'])
		$(id).addEventListener('change', onTime);
	for (const b of $('presets').querySelectorAll('button'))
		b.addEventListener('click', () => {
			state.from = b.dataset.range;
			state.until = 'now';
			state.x = '';
			load();
		});
	$('compare').addEventListener('change', () => {
		state.compare = $('compare').checked;
		if (!state.compare) {
			state.bfrom = '';
			state.buntil = '';
		}
		load();
	});
	$('live').addEventListener('change', () => {
		state.live = $('live').checked;
		load();
	});
	$('refresh').addEventListener('click', async () => { await loadSeries(); load(); });
	let searchTimer = null;
	$('search').addEventListener('input', () => {
		clearTimeout(searchTimer);
		searchTimer = setTimeout(() => {
			state.s = $('search').value;
			applySearch();
			writeUrl();
		}, 200);
	});
	$('reset-zoom').addEventListener('click', () => {
		const f = flameApi();
		if (f)
			f.resetZoom();
		state.x = '';
		writeUrl();
	});
	const ext = { folded: 'folded', svg: 'svg', speedscope: 'speedscope.json', pprof: 'pb.gz', json: 'json' };
	for (const a of document.querySelectorAll('.exports a'))
		a.addEventListener('click', (e) => {
			e.preventDefault();
			const f = a.dataset.format;
			download('render', { query: selection(), from: apiTime(state.from), until: apiTime(state.until), format: f },
				`${state.app}.${ext[f]}`);
		});
	window.addEventListener('keydown', (e) => {
		if (e.target.tagName === 'INPUT')
			return;
		if (e.key === 'r')
			load();
		if (e.key === '/') {
			e.preventDefault();
			$('search').focus();
		}
	});
	window.addEventListener('resize', () => {
		if (plot)
			plot.setSize({ width: Math.max(400, $('timeline').clientWidth), height: 150 });
	});
	loadSeries().then(load);
}

init();
