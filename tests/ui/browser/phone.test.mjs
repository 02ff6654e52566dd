// tests/ui/browser/phone.test.mjs: the phone pages of nhslogind in a real browser (Debian's
// headless Chromium driven by playwright-core) at a phone viewport, against nhslogin-mock (no
// auto-approve: the test picks the user on the mock's page) and a real nhslogind. Flows are started
// over the daemon socket (doc/protocol.md), as pam_nhslogin.so would. Checks each page's
// accessibility basics (the confirmation page's too: the account, computer and access it names
// are visible at 390x844), keeps a screenshot of each page in shots/, shows that a callback in a
// second browser (no cookie) is refused while the flow goes on, and reads the daemon's log for one
// line per event and no secrets. TAP on stdout; stops everything it started; 90 s at most.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 90_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const top = process.env.NL_TOP_BUILDDIR || path.resolve(here, '../../..');
const shots = path.resolve(process.env.NL_SHOTS_DIR || path.join(process.cwd(), 'shots'));
const chromiumPath = process.env.NL_CHROMIUM || '/usr/bin/chromium';
const PLAN = 14;

let n = 0;
let failed = 0;
const children = [];
let browser = null;
let work = null;

function ok(cond, desc, diag) {
	n++;
	if (cond) {
		console.log(`ok ${n} - ${desc}`);
	} else {
		failed++;
		console.log(`not ok ${n} - ${desc}`);
		if (diag) for (const l of String(diag).split('\n')) console.log(`# ${l}`);
	}
	return cond;
}
const diag = (s) => String(s).split('\n').forEach((l) => console.log(`# ${l}`));

function cleanup() {
	for (const c of children) {
		if (c.exitCode === null && c.signalCode === null) {
			try {
				c.kill('SIGKILL');
			} catch {
				/* gone */
			}
		}
	}
	if (work && !process.env.NL_KEEP) fs.rmSync(work, { recursive: true, force: true });
	work = null;
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
	process.on(sig, () => {
		console.log(`Bail out! signal ${sig}`);
		cleanup();
		process.exit(1);
	});
const watchdog = setTimeout(() => {
	console.log(`Bail out! timed out after ${TIMEOUT_MS / 1000} s`);
	cleanup();
	process.exit(1);
}, TIMEOUT_MS);

// ---- the world: nhslogin-mock and nhslogind ----

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// Start a program; resolve with its first stdout line (stderr goes to logfile).
function startWithFirstLine(prog, args, logfile, ms = 15_000) {
	return new Promise((resolve, reject) => {
		const log = fs.openSync(logfile, 'a');
		const c = spawn(prog, args, { stdio: ['ignore', 'pipe', log] });
		fs.closeSync(log);
		children.push(c);
		let buf = '';
		const t = setTimeout(() => reject(new Error(`${path.basename(prog)}: no first line in ${ms} ms`)), ms);
		c.stdout.on('data', (d) => {
			buf += d;
			const i = buf.indexOf('\n');
			if (i >= 0) {
				clearTimeout(t);
				resolve(buf.slice(0, i));
			}
		});
		c.on('exit', (code, sig) => {
			clearTimeout(t);
			reject(new Error(`${path.basename(prog)} exited (${code ?? sig})`));
		});
		c.stdout.resume();
	});
}

async function startWorld() {
	work = fs.mkdtempSync(path.join(os.tmpdir(), 'nl-browser.'));
	fs.chmodSync(work, 0o755);
	for (const d of ['environments', 'state', 'cache', 'run']) fs.mkdirSync(path.join(work, d));
	const key = path.join(work, 'client.key');
	const pub = path.join(work, 'client.pub');
	execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], {
		stdio: 'ignore',
	});
	fs.chmodSync(key, 0o600);
	execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', pub], { stdio: 'ignore' });
	const bport = await freePort();
	const bridge = `http://127.0.0.1:${bport}`;
	const redirect = `${bridge}/callback`;
	const issuer = await startWithFirstLine(
		path.join(top, 'nhslogin-mock'),
		['--listen', '127.0.0.1:0', '--client', `nhslogin-browser:${pub}:${redirect}`],
		path.join(work, 'mock.log'),
	);
	const socket = path.join(work, 'run', 'nhslogind.sock');
	// not root: let our own group use the socket (doc/protocol.md)
	const group = process.getuid() === 0 ? '' : `socket_group = ${execFileSync('id', ['-gn']).toString().trim()}\n`;
	fs.writeFileSync(
		path.join(work, 'nhslogin.conf'),
		`environment = local\nenvironments_dir = ${work}/environments\n` +
			`[daemon]\nsocket = ${socket}\nstate_dir = ${work}/state\ncache_dir = ${work}/cache\n${group}` +
			`[bridge]\nlisten = 127.0.0.1:${bport}\n` +
			`[identity]\nclaim = nhs_number\nmap_file = ${work}/nhslogin.map\nmin_level = P9\n`,
		{ mode: 0o644 },
	);
	fs.writeFileSync(
		path.join(work, 'environments', 'local.conf'),
		`issuer = ${issuer}\nclient_id = nhslogin-browser\nclient_key = ${key}\nredirect_uri = ${redirect}\n` +
			// P5 is asked for too, so that a P5 identity reaches the daemon's min_level rule
			`scope = openid profile\nvtr = ["P9.Cp.Cd","P9.Cp.Ck","P9.Cm","P5.Cp.Cd"]\nallowed_algs = RS512\n`,
		{ mode: 0o644 },
	);
	// p9 and p5 are the mock's built-in P9 and P5 users
	fs.writeFileSync(path.join(work, 'nhslogin.map'), 'clinician 9686368973\nnurse 9686368906\n', { mode: 0o644 });
	const daemonLog = path.join(work, 'daemon.log');
	const ready = await startWithFirstLine(
		path.join(top, 'nhslogind'),
		['--config', path.join(work, 'nhslogin.conf'), '--foreground'],
		daemonLog,
	);
	if (!ready.includes('ready')) throw new Error(`nhslogind: ${ready}`);
	return { issuer, bridge, socket, daemonLog };
}

// A connection to the daemon socket: one JSON object a line each way. A flow lives as long as the
// connection that started it.
class DaemonClient {
	constructor(socket) {
		this.sock = net.createConnection(socket);
		this.buf = '';
		this.waiters = [];
		this.sock.on('data', (d) => {
			this.buf += d;
			let i;
			while ((i = this.buf.indexOf('\n')) >= 0) {
				const line = this.buf.slice(0, i);
				this.buf = this.buf.slice(i + 1);
				const w = this.waiters.shift();
				if (w) w.resolve(JSON.parse(line));
			}
		});
		this.sock.on('error', (e) => this.waiters.splice(0).forEach((w) => w.reject(e)));
	}
	request(obj, ms = 15_000) {
		return new Promise((resolve, reject) => {
			const t = setTimeout(() => reject(new Error(`daemon: no answer to ${obj.op}`)), ms);
			this.waiters.push({
				resolve: (v) => (clearTimeout(t), resolve(v)),
				reject: (e) => (clearTimeout(t), reject(e)),
			});
			this.sock.write(JSON.stringify(obj) + '\n');
		});
	}
	close() {
		this.sock.destroy();
	}
}

// ---- page checks ----

// Runs in the page: the accessibility basics of the service manual that a script can see.
function auditInPage() {
	const problems = [];
	const lum = (rgb) => {
		const c = rgb.map((v) => {
			v /= 255;
			return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
		});
		return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
	};
	const parse = (s) => {
		const m = s.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
		return m ? { rgb: [+m[1], +m[2], +m[3]], a: m[4] === undefined ? 1 : +m[4] } : null;
	};
	const background = (el) => {
		for (let e = el; e; e = e.parentElement) {
			const b = parse(getComputedStyle(e).backgroundColor);
			if (b && b.a > 0) return b.rgb;
		}
		return [255, 255, 255];
	};
	const name = (el) => `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + el.className : ''}>`;
	const visible = (el) => {
		const r = el.getBoundingClientRect();
		const s = getComputedStyle(el);
		return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.right > 0 && r.left < innerWidth;
	};

	if (!/^en\b/.test(document.documentElement.lang)) problems.push(`lang is "${document.documentElement.lang}"`);
	if (!document.title.trim()) problems.push('no <title>');
	const h1 = document.querySelectorAll('h1').length;
	if (h1 !== 1) problems.push(`${h1} h1 headings (want 1)`);
	for (const el of document.querySelectorAll('input, select, textarea')) {
		if (el.type === 'hidden') continue;
		const labelled =
			(el.labels && [...el.labels].some((l) => l.textContent.trim())) ||
			el.getAttribute('aria-label') ||
			el.getAttribute('aria-labelledby');
		if (!labelled) problems.push(`${name(el)} has no label`);
	}
	for (const el of document.querySelectorAll('button, a[href]'))
		if (!(el.textContent.trim() || el.getAttribute('aria-label'))) problems.push(`${name(el)} has no text`);
	for (const id of new Set(
		[...document.querySelectorAll('[aria-describedby]')].flatMap((e) => e.getAttribute('aria-describedby').split(/\s+/)),
	))
		if (!document.getElementById(id)) problems.push(`aria-describedby names a missing #${id}`);
	// tap targets: controls at least 44 x 44 CSS px (WCAG 2.5.5; the service manual's buttons)
	for (const el of document.querySelectorAll('button, input:not([type=hidden]), a.button, summary')) {
		if (!visible(el)) continue;
		const r = el.getBoundingClientRect();
		if (r.height < 44 || r.width < 44) problems.push(`${name(el)} is ${r.width.toFixed(0)}x${r.height.toFixed(0)} px`);
	}
	// text contrast: 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold)
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	const seen = new Set();
	for (let t = walker.nextNode(); t; t = walker.nextNode()) {
		const el = t.parentElement;
		if (!t.textContent.trim() || seen.has(el) || !visible(el)) continue;
		seen.add(el);
		const s = getComputedStyle(el);
		const fg = parse(s.color);
		if (!fg) continue;
		const l1 = lum(fg.rgb), l2 = lum(background(el));
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) problems.push(`${name(el)} "${t.textContent.trim().slice(0, 30)}" contrast ${ratio.toFixed(2)} < ${need}`);
	}
	// no horizontal scrolling at a phone's width
	if (document.documentElement.scrollWidth > innerWidth + 1)
		problems.push(`page is ${document.documentElement.scrollWidth} px wide at a ${innerWidth} px viewport`);
	return problems;
}

// A visible focus indicator: focusing changes the outline, box-shadow or background.
async function focusProblems(page, selectors) {
	const out = [];
	for (const sel of selectors) {
		const loc = page.locator(sel).first();
		if ((await loc.count()) === 0) continue;
		const look = () =>
			loc.evaluate((el) => {
				const s = getComputedStyle(el);
				return `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}|${s.boxShadow}|${s.backgroundColor}`;
			});
		await page.evaluate(() => document.activeElement && document.activeElement.blur());
		const before = await look();
		await loc.focus();
		const after = await look();
		const outline = after.split('|')[0];
		if (before === after || (outline.startsWith('none') && after.split('|')[1] === 'none'))
			out.push(`${sel}: no visible focus (${after})`);
	}
	await page.evaluate(() => document.activeElement && document.activeElement.blur());
	return out;
}

async function audit(page, label, focusSel = []) {
	const problems = [...(await page.evaluate(auditInPage)), ...(await focusProblems(page, focusSel))];
	if (problems.length) diag(`${label}: ${problems.join('; ')}`);
	return problems;
}

async function shot(page, file) {
	const p = path.join(shots, file);
	await page.screenshot({ path: p, fullPage: true });
	return p;
}

const h1 = (page) => page.locator('h1').first().innerText();

// On the confirmation page: "Continue to NHS login" (the locator waits for the page).
async function continueToNhsLogin(page) {
	await page.locator('button[value=continue]').tap();
}

// On the confirmation page: what it says, and whether each fact is on screen at the phone's size.
async function confirmFacts(page) {
	return page.evaluate(() => {
		const row = (term) => {
			const dt = [...document.querySelectorAll('dt')].find((e) => e.innerText.trim() === term);
			const dd = dt && dt.nextElementSibling;
			if (!dd) return { text: '', visible: false };
			const r = dd.getBoundingClientRect();
			return { text: dd.innerText, visible: r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= innerWidth };
		};
		return {
			h1: document.querySelector('h1')?.innerText,
			account: row('Account'),
			computer: row('Computer'),
			access: row('Access'),
			started: row('Started'),
			code: row('Code'),
			warning: document.querySelector('.callout')?.innerText || '',
			buttons: [...document.querySelectorAll('button')].map((b) => b.innerText),
		};
	});
}

// A second browser: a context of its own (its own profile, so no cookie of the first).
async function launchPhone(dir) {
	const profile = fs.mkdtempSync(path.join(dir, 'chromium-profile.'));
	const ctx = await chromium.launchPersistentContext(profile, {
		executablePath: chromiumPath,
		headless: true,
		timeout: 30_000,
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
		],
		viewport: { width: 390, height: 844 },
		deviceScaleFactor: 2,
		isMobile: true,
		hasTouch: true,
		javaScriptEnabled: false,
		locale: 'en-GB',
	});
	ctx.setDefaultTimeout(15_000);
	return ctx;
}

// ---- the test ----

async function main() {
	console.log(`1..${PLAN}`);
	fs.mkdirSync(shots, { recursive: true });
	for (const f of fs.readdirSync(shots)) if (f.endsWith('.png')) fs.rmSync(path.join(shots, f));

	let w;
	try {
		w = await startWorld();
	} catch (e) {
		console.log(`Bail out! ${e.message}`);
		if (work) for (const f of ['mock.log', 'daemon.log']) if (fs.existsSync(path.join(work, f))) diag(fs.readFileSync(path.join(work, f), 'utf8'));
		return;
	}

	// A phone, with JavaScript off: every page must work without it (the audit runs in
	// Playwright's own world, which the setting does not affect). A new empty profile; Playwright
	// passes it as --user-data-dir.
	const ctx = await launchPhone(work);
	browser = ctx;
	const page = ctx.pages()[0] || (await ctx.newPage());
	const offsite = [];
	page.on('request', (r) => {
		const u = new URL(r.url());
		if (u.origin !== w.bridge && u.origin !== new URL(w.issuer).origin) offsite.push(r.url());
	});
	const consoleErrors = [];
	// error pages have error statuses, which Chromium reports; anything else (a CSP report) counts
	page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource/.test(m.text()) && consoleErrors.push(m.text()));

	const flows = {};
	const held = [];
	const startFlow = async (user, service = 'browser-test', rhost = undefined) => {
		const c = new DaemonClient(w.socket);
		held.push(c);
		const s = await c.request({ op: 'start', user, service, tty: 'pts/0', ...(rhost ? { rhost } : {}) });
		if (!s.ok || s.status !== 'pending') throw new Error(`start: ${JSON.stringify({ ...s, device_code: undefined })}`);
		return { c, ...s };
	};

	try {
		// 1. The code entry page.
		let resp = await page.goto(`${w.bridge}/d`);
		let probs = await audit(page, 'code entry', ['#code', 'button[type=submit]', 'summary']);
		const input = await page.locator('#code').evaluate((el) => ({
			inputmode: el.getAttribute('inputmode'),
			autocomplete: el.getAttribute('autocomplete'),
			autocapitalize: el.getAttribute('autocapitalize'),
			label: el.labels[0]?.textContent,
		}));
		const csp = resp.headers()['content-security-policy'] || '';
		flows.entryShot = await shot(page, '01-code-entry.png');
		ok(
			resp.status() === 200 &&
				probs.length === 0 &&
				input.inputmode === 'text' &&
				input.autocomplete === 'one-time-code' &&
				input.autocapitalize === 'characters' &&
				/code/i.test(input.label || '') &&
				csp.includes("default-src 'none'"),
			'code entry page: labelled code field suited to the code, one h1, 44 px targets, contrast, focus, CSP',
			JSON.stringify({ status: resp.status(), input, csp }),
		);

		// 2. A wrong code: the error summary and the message beside the field.
		await page.locator('#code').fill('acde fghj');
		await Promise.all([page.waitForEvent('load'), page.locator('button[type=submit]').tap()]);
		probs = await audit(page, 'wrong code', ['#code', '.error-summary a']);
		const err = await page.evaluate(() => ({
			summary: document.querySelector('.error-summary')?.innerText || '',
			beside: document.querySelector('#code-error')?.innerText || '',
			invalid: document.querySelector('#code')?.getAttribute('aria-invalid'),
			described: document.querySelector('#code')?.getAttribute('aria-describedby') || '',
			title: document.title,
			link: document.querySelector('.error-summary a')?.getAttribute('href'),
		}));
		await shot(page, '02-wrong-code.png');
		ok(
			/There is a problem/.test(err.summary) &&
				/not recognised/.test(err.summary) &&
				/not recognised/.test(err.beside) &&
				err.invalid === 'true' &&
				err.described.includes('code-error') &&
				err.link === '#code' &&
				err.title.startsWith('Error:') &&
				probs.length === 0,
			'a wrong code shows an error summary linking to the field and the message beside it',
			JSON.stringify(err),
		);

		// 3. The confirmation page, from the QR code's link of a sign-in over SSH: the daemon's own
		// record of the account, the computer and the access, the code and the warning, on screen at
		// 390x844 and passing the audit. "This was not me" ends the sign-in.
		const host = os.hostname();
		const f0 = await startFlow('clinician', 'sshd', '203.0.113.9');
		resp = await page.goto(`${w.bridge}/d?code=${f0.user_code.replace('-', '')}`);
		probs = await audit(page, 'confirmation', ['button[value=continue]', 'button[value=refuse]']);
		const facts = await confirmFacts(page);
		// (all cookies: filtered by an http URL, Playwright would leave out the Secure one)
		const cookie = (await ctx.cookies()).find((c) => c.name === '__Host-nhslogin' && c.domain === '127.0.0.1');
		await shot(page, '03a-confirm.png');
		ok(
			resp.status() === 200 &&
				probs.length === 0 &&
				facts.account.visible && facts.account.text === 'clinician' &&
				facts.computer.visible && facts.computer.text === host &&
				facts.access.visible && /^SSH from 203\.0\.113\.9/.test(facts.access.text) && /PAM service: sshd/.test(facts.access.text) &&
				/seconds ago|just now/.test(facts.started.text) &&
				facts.code.text.includes(f0.user_code) &&
				/Only continue if you are at this computer now and you started this sign-in\. If someone sent you this link or code, stop\./.test(facts.warning) &&
				facts.buttons.join('|') === 'Continue to NHS login|This was not me' &&
				cookie && cookie.secure && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/',
			'the confirmation page names the account, computer and access (visible at 390x844), the code and the warning; accessible; __Host- cookie',
			JSON.stringify({ status: resp.status(), facts, host, cookie: cookie && { ...cookie, value: '...' } }),
		);
		await Promise.all([page.waitForEvent('load'), page.locator('button[value=refuse]').tap()]);
		probs = await audit(page, 'refused');
		const stopped = await h1(page);
		await shot(page, '03b-not-me.png');
		const r0 = await f0.c.request({ op: 'wait', device_code: f0.device_code, timeout: 5 });
		ok(/Sign-in stopped/.test(stopped) && probs.length === 0 && r0.status === 'denied' && r0.reason === 'denied',
			'"This was not me" stops the sign-in: the workstation is denied', JSON.stringify({ stopped, r0 }));

		// 4-7. The sign-in: the code typed in lower case without the dash, the confirmation page,
		// the mock's page, p9, back.
		const f1 = await startFlow('clinician');
		await page.goto(`${w.bridge}/d`);
		await page.locator('#code').pressSequentially(f1.user_code.replace('-', '').toLowerCase());
		await page.locator('summary').tap(); /* the help opens without JavaScript */
		const helpOpen = await page.locator('details').evaluate((d) => d.open);
		await shot(page, '03-code-typed.png');
		await page.locator('button[type=submit]').tap();
		await continueToNhsLogin(page);
		await page.waitForURL((u) => u.href.startsWith(w.issuer) && u.pathname.endsWith('/authorize'));
		const mockUrl = new URL(page.url());
		await shot(page, '04-nhs-login-mock.png');
		ok(
			helpOpen &&
				(await page.locator('button[value=p9]').count()) === 1 &&
				mockUrl.searchParams.get('response_type') === 'code' &&
				mockUrl.searchParams.get('code_challenge_method') === 'S256',
			'the code in lower case without the dash (help opened without JavaScript) leads to NHS login /authorize',
			page.url().replace(/(state|nonce|code_challenge)=[^&]*/g, '$1=...'),
		);
		await page.locator('button[value=p9]').tap();
		await page.waitForURL((u) => u.href.startsWith(`${w.bridge}/callback`));
		const doneUrl = page.url();
		probs = await audit(page, 'signed in');
		const done = await page.evaluate(() => ({
			h1: document.querySelector('h1')?.innerText,
			next: [...document.querySelectorAll('h2')].map((e) => e.innerText),
			text: document.querySelector('main')?.innerText,
		}));
		await shot(page, '05-signed-in.png');
		ok(
			/^Signed in/.test(done.h1) && done.next.includes('What to do next') && /close this page/.test(done.text) && probs.length === 0,
			'after choosing p9 the phone shows "Signed in" with what to do next',
			JSON.stringify(done),
		);
		const r1 = await f1.c.request({ op: 'wait', device_code: f1.device_code, timeout: 5 });
		ok(r1.ok && r1.status === 'approved' && r1.user === 'clinician', 'the workstation side is approved for clinician', JSON.stringify(r1));

		// 7. The same callback again: the state is used up.
		await page.goto(doneUrl);
		probs = await audit(page, 'used link');
		const used = await h1(page);
		await shot(page, '06-link-used.png');
		ok(/already been used or has expired/.test(used) && probs.length === 0, 'a used callback link says so and what to do', used);

		// 8. An unknown state.
		resp = await page.goto(`${w.bridge}/callback?state=not-a-state&code=x`);
		ok(resp.status() === 400 && /already been used or has expired/.test(await h1(page)), 'an unknown state is refused with its page', await h1(page));

		// 9. The person declines at NHS login.
		const f2 = await startFlow('clinician');
		await page.goto(`${w.bridge}/d?code=${f2.user_code.replace('-', '')}`); /* the QR code's link */
		await continueToNhsLogin(page);
		await page.waitForURL((u) => u.href.startsWith(w.issuer));
		await page.locator('button[name=decline]').tap();
		await page.waitForURL((u) => u.href.startsWith(`${w.bridge}/callback`));
		probs = await audit(page, 'declined');
		const declined = await page.evaluate(() => ({ h1: document.querySelector('h1')?.innerText, h2: document.querySelector('h2')?.innerText }));
		await shot(page, '07-declined.png');
		const r2 = await f2.c.request({ op: 'wait', device_code: f2.device_code, timeout: 5 });
		ok(
			/not completed/.test(declined.h1) && declined.h2 === 'What to do next' && probs.length === 0 && r2.status === 'denied' && r2.reason === 'denied',
			'declining shows "Sign-in was not completed" and the workstation is denied',
			JSON.stringify({ declined, r2 }),
		);

		// 10. A P5 identity is not enough for a workstation that needs P9.
		const f3 = await startFlow('nurse');
		await page.goto(`${w.bridge}/d`);
		await page.locator('#code').fill(` ${f3.user_code.toLowerCase().replace('-', ' ')} `);
		await page.locator('button[type=submit]').tap();
		await continueToNhsLogin(page);
		await page.waitForURL((u) => u.href.startsWith(w.issuer));
		await page.locator('button[value=p5]').tap();
		await page.waitForURL((u) => u.href.startsWith(`${w.bridge}/callback`));
		const level = await h1(page);
		await shot(page, '08-identity-level.png');
		const r3 = await f3.c.request({ op: 'wait', device_code: f3.device_code, timeout: 5 });
		ok(r3.status === 'denied' && r3.reason === 'level' && /Identity check needed/.test(level), 'a code with spaces works; a P5 identity gets "Identity check needed"', JSON.stringify({ level, r3 }));

		// 11. The workstation gives up (connection closed) while the phone is at NHS login.
		const f4 = await startFlow('clinician');
		await page.goto(`${w.bridge}/d?code=${f4.user_code.replace('-', '')}`);
		await continueToNhsLogin(page);
		await page.waitForURL((u) => u.href.startsWith(w.issuer));
		f4.c.close();
		await new Promise((r) => setTimeout(r, 300));
		await page.locator('button[value=p9]').tap();
		await page.waitForURL((u) => u.href.startsWith(`${w.bridge}/callback`));
		const gone = await h1(page);
		await shot(page, '09-workstation-gave-up.png');
		ok(/already been used or has expired/.test(gone) && offsite.length === 0 && consoleErrors.length === 0,
			'a flow cancelled at the workstation ends at a page that says so; no request left the two servers',
			JSON.stringify({ gone, offsite, consoleErrors }));

		// 13. Login CSRF: the phone continues and signs in at NHS login, but the answer is taken to
		// another browser (no cookie of the phone's). Refused there, with a page saying why; the
		// sign-in goes on, and the phone's own browser finishes it.
		const f5 = await startFlow('clinician');
		await page.goto(`${w.bridge}/d?code=${f5.user_code.replace('-', '')}`);
		await continueToNhsLogin(page);
		await page.waitForURL((u) => u.href.startsWith(w.issuer));
		// NHS login's answer (its redirect back to the callback) is caught before this browser follows it.
		let stolen = null;
		const decision = `${w.issuer}/authorize/decision`;
		await page.route(decision, async (route) => {
			const r = await route.fetch({ maxRedirects: 0 });
			stolen = r.headers()['location'] || null;
			await route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>held</title><h1>held</h1>' });
		});
		await page.locator('button[value=p9]').tap();
		for (let i = 0; i < 100 && !stolen; i++) await new Promise((r) => setTimeout(r, 50));
		await page.unroute(decision);
		if (!stolen || !stolen.startsWith(`${w.bridge}/callback`)) throw new Error(`no callback URL caught: ${stolen}`);
		const other = await launchPhone(work);
		let refusedCb = {};
		try {
			const op = other.pages()[0] || (await other.newPage());
			const rr = await op.goto(stolen);
			const oprobs = await audit(op, 'callback in another browser');
			refusedCb = { status: rr.status(), h1: await h1(op), probs: oprobs };
			await shot(op, '10-callback-other-browser.png');
		} finally {
			await other.close();
		}
		const mid = await f5.c.request({ op: 'wait', device_code: f5.device_code, timeout: 1 });
		await page.goto(stolen);
		const mine = await h1(page);
		const r5 = await f5.c.request({ op: 'wait', device_code: f5.device_code, timeout: 5 });
		ok(
			refusedCb.status === 403 && /started in another browser/.test(refusedCb.h1) && refusedCb.probs.length === 0 &&
				mid.status === 'pending' && /^Signed in/.test(mine) && r5.status === 'approved',
			'a callback in a second browser (no cookie) is refused and changes nothing; the phone that continued signs in',
			JSON.stringify({ refusedCb, mid, mine, r5 }),
		);

		// 14. The daemon's log: one line per event with the flow id, never a secret.
		await new Promise((r) => setTimeout(r, 300));
		const log = fs.readFileSync(w.daemonLog, 'utf8');
		const lines = log.split('\n');
		const about = (f) => lines.filter((l) => l.includes(f.flow));
		const count = (f, re) => about(f).filter((l) => re.test(l)).length;
		const logProblems = [];
		const expect = (f, what, re) => {
			const k = count(f, re);
			if (k !== 1) logProblems.push(`${f.flow} ${what}: ${k} lines`);
		};
		for (const f of [f0, f1, f2, f3, f4, f5]) expect(f, 'started', /started/);
		for (const f of [f1, f2, f3, f4, f5]) expect(f, 'confirmed', /: confirmed from 127\.0\.0\.1, on to NHS login/);
		expect(f0, 'refused at the confirmation page', /: denied reason=denied user=clinician \(refused at the confirmation page from 127\.0\.0\.1\)/);
		expect(f5, 'callback in another browser', /callback from 127\.0\.0\.1 without the sign-in cookie .*: refused; the sign-in goes on/);
		expect(f1, 'approved (mapped user)', /: approved user=clinician (sub=[^ ]+ nhs_number=\*+\d{3} )?\(identity mapped by nhs_number/);
		expect(f2, 'denied', /: denied reason=denied user=clinician \(NHS login answered error=access_denied \(the user declined\)\)/);
		expect(f3, 'level (the rule that failed)', /: denied reason=level user=nurse \(identity level/);
		expect(f4, 'cancelled', /: denied reason=cancelled user=clinician/);
		const want = (f) => (f === f0 ? 3 : f === f5 ? 5 : 4);
		for (const f of [f0, f1, f2, f3, f4, f5])
			if (about(f).length !== want(f))
				logProblems.push(`${f.flow}: ${about(f).length} lines (want started, code accepted, confirmed or refused, outcome; and the refused callback)`);
		for (const f of [f0, f1, f2, f3, f4, f5])
			for (const secret of [f.device_code, f.user_code, f.user_code.replace('-', '')])
				if (log.includes(secret)) logProblems.push(`${f.flow}: a secret is in the log`);
		ok(logProblems.length === 0, 'the daemon logs one line per event, each with the flow id, and no secret', logProblems.join('\n') + '\n' + lines.filter((l) => /flow f-/.test(l)).join('\n'));
	} catch (e) {
		ok(false, `the browser session went as planned`, `${e.stack}\nat ${page.url()}`);
		try {
			await shot(page, '99-failure.png');
		} catch {
			/* no page */
		}
		diag(fs.readFileSync(w.daemonLog, 'utf8'));
	} finally {
		for (const c of held) c.close();
		await browser.close();
		browser = null;
	}
}

try {
	await main();
} catch (e) {
	console.log(`Bail out! ${e.message}`);
	failed++;
}
clearTimeout(watchdog);
if (n < PLAN && failed === 0) failed++;
cleanup();
process.exitCode = failed === 0 ? 0 : 1;
