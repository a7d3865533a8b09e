/*
 * baton's HTML report: draws the report data document (the JSON in
 * #baton-data, see src/report/report.h) as a timeline. Every text from the
 * run reaches the page through esc() or textContent, never as markup.
 */
(function () {
  'use strict';
  var ROWH = 20, LW = 250;
  var STATUSES = ['success', 'failed', 'timeout', 'cancelled', 'skipped', 'running'];
  var ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  var D, RUN, TASKS, STEPS, T = 1, END = 1, mode = 'step', zoom = 1, selected = -1, filter = '';
  var chart, canvas, axisTr, tip, PXMS = 1;

  function $(id) { return document.getElementById(id); }
  function esc(s) {
    s = String(s);
    return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, function (c) { return ESC[c]; }) : s;
  }
  function num(x, d) { return typeof x === 'number' && isFinite(x) ? x : d; }
  function str(x) { return x === null || x === undefined ? '' : typeof x === 'string' ? x : JSON.stringify(x); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }
  /* durations as baton prints them: 250ms, 1.5s, 2m05s, 1h02m */
  function dur(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '—';
    ms = Math.max(0, Math.round(ms));
    if (ms < 1000) return ms + 'ms';
    if (ms < 60000) return (ms < 10000 ? (Math.round(ms / 100) / 10).toFixed(1) : Math.round(ms / 1000)) + 's';
    var s = Math.floor(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + 'm' + pad(s % 60, 2) + 's';
    return Math.floor(s / 3600) + 'h' + pad(Math.floor(s / 60) % 60, 2) + 'm';
  }
  function tickLabel(ms, step) {
    if (ms === 0) return '0';
    if (step < 1000) return (ms < 1000 ? ms + 'ms' : (ms / 1000).toFixed(step < 100 ? 2 : 1) + 's');
    if (ms < 60000) return Math.round(ms / 1000) + 's';
    var s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? pad(s % 60, 2) + 's' : '');
    return Math.floor(s / 3600) + 'h' + pad(Math.floor(s / 60) % 60, 2) + 'm';
  }
  function pct(ms) { return (Math.max(0, Math.min(ms, T)) / T * 100).toFixed(4) + '%'; }
  function stKey(t) {
    if (t.status === null || t.status === undefined) return 'running';
    return STATUSES.indexOf(t.status) >= 0 ? t.status : 'cancelled';
  }

  /* ---- the data, made safe to read ---- */
  function load() {
    var raw = $('baton-data').textContent;
    D = JSON.parse(raw);
    if (!D || typeof D !== 'object') D = {};
    RUN = D.run && typeof D.run === 'object' ? D.run : {};
    STEPS = Array.isArray(D.steps) ? D.steps.filter(function (s) { return s && typeof s === 'object'; }) : [];
    var tasks = Array.isArray(D.tasks) ? D.tasks : [];
    TASKS = [];
    var maxT = num(RUN.duration_ms, 0), maxAtt = {};
    tasks.forEach(function (t) {
      if (!t || typeof t !== 'object') return;
      var s = num(t.start_ms, 0), e = num(t.end_ms, null);
      var o = {
        id: str(t.id), step: str(t.step), host: t.host === null || t.host === undefined ? null : str(t.host),
        item: t.item === undefined ? null : t.item, label: t.label === null || t.label === undefined ? null : str(t.label),
        attempt: num(t.attempt, 1), s: s, e: e, status: t.status === undefined ? null : t.status,
        exit_code: t.exit_code, signal: t.signal, reason: t.reason, command: str(t.command),
        tolerated: t.tolerated === true, reused: t.reused === true,
        output: Array.isArray(t.output) ? t.output : [], dropped: num(t.output_dropped, 0), i: TASKS.length
      };
      o.st = stKey(o);
      maxT = Math.max(maxT, s, e === null ? 0 : e);
      maxAtt[o.id] = Math.max(maxAtt[o.id] || 0, o.attempt);
      TASKS.push(o);
    });
    END = Math.max(maxT, 1);
    T = END * 1.025; /* room after the last bar for its edge and the last tick */
    TASKS.forEach(function (t) {
      t.end = t.e === null ? END : Math.max(t.e, t.s);
      t.d = t.e === null ? null : t.end - t.s;
      t.maxAttempt = maxAtt[t.id];
      t.suffix = t.id.indexOf(t.step) === 0 ? t.id.slice(t.step.length) : '';
    });
  }

  /* ---- grouping: top-level steps (or hosts), rows inside, lanes inside rows ---- */
  function topSteps() {
    var min = Infinity, tops = {}, order = [];
    STEPS.forEach(function (s) { if (typeof s.depth === 'number') min = Math.min(min, s.depth); });
    STEPS.forEach(function (s) {
      var id = str(s.id);
      if (id && id.indexOf('#') < 0 && (s.depth === min || typeof s.depth !== 'number') && !tops[id]) {
        tops[id] = s;
        order.push(id);
      }
    });
    return { map: tops, order: order };
  }
  function topOf(tops, stepId) {
    var k = stepId;
    for (;;) {
      if (Object.prototype.hasOwnProperty.call(tops.map, k)) return k;
      var i = k.lastIndexOf('.');
      if (i < 0) break;
      k = k.slice(0, i);
    }
    return stepId.split('.')[0].split('#')[0];
  }
  function instLabel(t) {
    var parts = [];
    if (t.host !== null) parts.push('@' + t.host);
    if (t.label !== null) parts.push(t.label);
    else if (t.item !== null && t.suffix.indexOf('#') >= 0) parts.push(t.suffix.slice(t.suffix.indexOf('#')));
    return parts.length ? parts.join(' ') : t.suffix;
  }
  function build() {
    var tops = topSteps(), groups = [], gmap = {};
    function group(key, title, step) {
      var g = gmap['k' + key];
      if (!g) {
        g = gmap['k' + key] = { key: key, title: title, step: step, rows: [], rmap: {}, first: Infinity, last: 0, n: 0, ids: {}, nid: 0 };
        groups.push(g);
      }
      return g;
    }
    if (mode !== 'host') {
      tops.order.forEach(function (id) {
        var s = tops.map[id];
        group(id, s.name ? str(s.name) : id, s);
      });
    }
    TASKS.forEach(function (t) {
      var top = topOf(tops, t.step), g, rk, rl;
      t.top = top;
      if (mode === 'packed') {
        /* one row per step: its tasks packed into as few lanes as never overlap */
        g = group(top, top, tops.map[top] || null);
        rk = rl = 'all';
      } else if (mode === 'step') {
        g = group(top, top, tops.map[top] || null);
        if (t.suffix) {
          rk = t.suffix;
          rl = instLabel(t);
        } else {
          rk = t.step;
          rl = t.step === top ? (g.title || top) : t.step.slice(top.length + 1);
        }
      } else {
        var h = t.host === null ? 'local' : t.host;
        g = group(h, t.host === null ? 'local (no host)' : '@' + t.host, null);
        rk = top;
        var ts = tops.map[top];
        rl = ts && ts.name ? str(ts.name) : top;
      }
      var r = g.rmap['k' + rk];
      if (!r) {
        r = g.rmap['k' + rk] = { label: rl, tasks: [], first: t.s };
        g.rows.push(r);
      }
      r.tasks.push(t);
      r.first = Math.min(r.first, t.s);
      g.first = Math.min(g.first, t.s);
      g.last = Math.max(g.last, t.end);
      g.n++;
      if (!g.ids['k' + t.id]) { g.ids['k' + t.id] = 1; g.nid++; }
    });
    groups = groups.filter(function (g) { return g.n > 0 || g.step; });
    if (mode === 'host') groups.sort(function (a, b) { return a.first - b.first; });
    groups.forEach(function (g) {
      g.rows.sort(function (a, b) { return a.first - b.first; });
      g.rows.forEach(lanes);
      if (mode === 'packed') g.rows.forEach(function (r) { r.label = r.nl + (r.nl === 1 ? ' lane' : ' lanes'); });
    });
    return groups;
  }
  /* Packs a row's tasks into lanes that do not overlap; all attempts of a task share one lane. */
  function lanes(r) {
    var spans = {}, list = [];
    r.tasks.forEach(function (t) {
      var sp = spans['k' + t.id];
      if (!sp) { sp = spans['k' + t.id] = { s: t.s, e: t.end, ts: [] }; list.push(sp); }
      sp.s = Math.min(sp.s, t.s);
      sp.e = Math.max(sp.e, t.end);
      sp.ts.push(t);
    });
    list.sort(function (a, b) { return a.s - b.s; });
    var ends = [];
    list.forEach(function (sp) {
      var l = 0;
      while (l < ends.length && ends[l] > sp.s) l++;
      ends[l] = sp.e;
      sp.ts.forEach(function (t) { t.lane = l; });
    });
    r.nl = Math.max(1, ends.length);
  }

  /* ---- drawing ---- */
  function barHTML(t) {
    var cls = 'bar st-' + t.st + (t.tolerated ? ' tolerated' : '') + (t.attempt < t.maxAttempt ? ' retry' : '');
    if (t.i === selected) cls += ' sel';
    var name = t.label !== null ? t.label : t.step.slice(t.step.lastIndexOf('.') + 1);
    /* text only where it can be read: fewer nodes for the browser to lay out */
    var text = (t.end - t.s) * PXMS < 28 ? '' : (t.maxAttempt > 1 ? '\u21bb' + t.attempt + ' ' : '') + name;
    return '<div class="' + cls + '" data-task="' + esc(t.id) + '" data-attempt="' + t.attempt + '" data-i="' + t.i +
      '" style="left:' + pct(t.s) + ';width:' + pct(t.end - t.s) + ';top:' + (t.lane * ROWH) + 'px">' + esc(text) + '</div>';
  }
  /* A group's batch bands and barrier lines (body), and their labels (header track). */
  function overlays(g) {
    var h = [], tags = [], n = 0, lastB = -1e9, lastR = -1e9;
    (Array.isArray(D.batches) ? D.batches : []).forEach(function (b) {
      if (!b || (g && topOfStep(b.step) !== g.key)) return;
      var s = num(b.start_ms, null);
      if (s === null) return;
      var e = num(b.end_ms, T), inst = Array.isArray(b.instances) ? b.instances.length : num(b.instances, 0);
      h.push('<div class="band' + (n++ % 2 ? ' odd' : '') + '" style="left:' + pct(s) + ';width:' + pct(Math.max(e - s, 0)) + '"></div>');
      var bt = 'batch ' + (num(b.batch, 0) + 1) + ' \u00b7 ' + inst + (num(b.failed, 0) ? ' \u00b7 ' + num(b.failed, 0) + ' failed' : '');
      if (s * PXMS < lastB) return; /* no room after the last label: the band speaks for itself */
      lastB = s * PXMS + 6 * bt.length + 12;
      tags.push('<i class="tag" style="left:' + pct(s) + '">' + bt + '</i>');
    });
    (Array.isArray(D.barriers) ? D.barriers : []).forEach(function (b) {
      if (!b || (g && topOfStep(b.step) !== g.key)) return;
      var r = num(b.release_ms, null);
      if (r === null) return;
      h.push('<div class="bline" style="left:' + pct(r) + '"></div>');
      var rt = '\u2016 ' + str(b.barrier) + ' ' + num(b.arrived, 0) + '/' + num(b.expected, 0);
      if (r * PXMS < lastR) return;
      lastR = r * PXMS + 6 * rt.length + 12;
      tags.push('<i class="tag bt" style="left:' + pct(r) + '">' + esc(rt) + '</i>');
    });
    return { body: h.length ? '<div class="ov">' + h.join('') + '</div>' : '', tags: tags.join('') };
  }
  var TOPS;
  function topOfStep(id) { return topOf(TOPS, str(id)); }
  function render() {
    PXMS = Math.max(200, (chart.clientWidth - LW) * zoom) / T;
    TOPS = topSteps();
    var groups = build(), h = [];
    h.push('<div class="axis"><div class="rl">' + ({ step: 'step / instance', host: 'host / step', packed: 'step / lanes' }[mode]) +
      '</div><div class="tr" id="axis"></div></div>');
    if (mode === 'host') {
      var all = overlays(null);
      if (all.tags) h.push(all.body + '<div class="gh marks"><div class="rl">batches \u00b7 barriers</div><div class="tr">' + all.tags + '</div></div>');
    }
    groups.forEach(function (g, gi) {
      var st = g.step && g.step.status ? str(g.step.status) : '';
      var s0 = g.step ? num(g.step.start_ms, g.first) : g.first, s1 = g.step ? num(g.step.end_ms, g.last) : g.last;
      var known = g.n > 0 || (g.step && typeof g.step.start_ms === 'number');
      if (!isFinite(s0)) s0 = 0;
      if (s1 === null) s1 = END;
      var ov = mode !== 'host' ? overlays(g) : { body: '', tags: '' };
      var meta = g.nid + (g.nid === 1 ? ' task' : ' tasks') + (g.n > g.nid ? ' \u00b7 \u21bb' + g.n : '') +
        (known && s1 >= s0 ? ' \u00b7 ' + dur(s1 - s0) : '');
      h.push('<section class="grp" data-g="' + gi + '"><div class="gh"><div class="rl"><span class="tw">\u25be</span>' +
        '<span class="dot" style="background:var(--' + dotVar(st) + ')"></span><span>' + esc(g.title) +
        '</span><span class="gm">' + esc(meta) + '</span></div><div class="tr">' +
        (known && s1 >= s0 ? '<div class="span s-' + esc(st) + '" style="left:' + pct(s0) + ';width:' + pct(Math.max(s1 - s0, 0)) + '"></div>' : '') + ov.tags +
        '</div></div><div class="gb">' + ov.body);
      g.rows.forEach(function (r) {
        h.push('<div class="row" style="height:' + (r.nl * ROWH) + 'px"><div class="rl" title="' + esc(r.label) + '">' +
          esc(r.label) + '</div><div class="tr">');
        for (var i = 0; i < r.tasks.length; i++) h.push(barHTML(r.tasks[i]));
        h.push('</div></div>');
      });
      h.push('</div></section>');
    });
    var ticks = layoutZoom(true);
    canvas.innerHTML = h.join('');
    axisTr = $('axis');
    axisTr.innerHTML = ticks;
    applyFilter();
  }
  function sigName(n) {
    var names = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };
    return typeof n === 'number' && names[n] ? names[n] + ' (' + n + ')' : str(n);
  }
  function dotVar(st) {
    return { success: 'ok', failed: 'fail', timeout: 'tmo', cancelled: 'cxl', skipped: 'skip', running: 'run' }[st] || 'line';
  }
  /* The time axis: about one tick per 110 px of track; returns its HTML when asked to, else draws it. */
  function layoutZoom(ret) {
    canvas.style.width = zoom === 1 ? '100%' : 'calc(' + LW + 'px + (100% - ' + LW + 'px) * ' + zoom + ')';
    var w = Math.max(200, (chart.clientWidth - LW) * zoom), want = T / (w / 110);
    var p = Math.pow(10, Math.floor(Math.log(want) / Math.LN10)), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return m * p >= want; });
    if (step >= 1000) {
      var nice = [1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000];
      for (var k = 0; k < nice.length && nice[k] < want; k++);
      step = k < nice.length ? nice[k] : Math.ceil(want / 3600000) * 3600000;
    }
    step = Math.max(1, step);
    canvas.style.setProperty('--tick', (step / T * 100) + '%');
    var h = [];
    for (var t = 0; t <= T; t += step) h.push('<div class="tick" style="left:' + pct(t) + '">' + tickLabel(t, step) + '</div>');
    if (ret) return h.join('');
    axisTr.innerHTML = h.join('');
  }

  /* ---- header, lists ---- */
  function header() {
    var st = RUN.status === null || RUN.status === undefined ? 'running' : str(RUN.status);
    $('plan').textContent = str(RUN.name || RUN.plan || 'baton run');
    $('planfile').textContent = RUN.plan ? str(RUN.plan) : '';
    $('runid').textContent = 'run ' + str(RUN.id);
    var pill = $('status');
    pill.textContent = st + (RUN.dry_run ? ' (dry run)' : '');
    pill.className = 'pill s-' + st.replace(/[^a-z]/g, '');
    var meta = $('meta');
    function m(k, v) { var s = el('span'); s.appendChild(document.createTextNode(k + ' ')); s.appendChild(el('b', '', v)); meta.appendChild(s); }
    m('duration', dur(num(RUN.duration_ms, null)));
    if (RUN.start) m('started', str(RUN.start).replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
    m('tasks', String(new Set(TASKS.map(function (t) { return t.id; })).size));
    if (RUN.exit_code !== null && RUN.exit_code !== undefined) m('exit', str(RUN.exit_code));
    var c = RUN.counts && typeof RUN.counts === 'object' ? RUN.counts : {}, box = $('counts');
    ['success', 'failed', 'timeout', 'cancelled', 'skipped', 'tolerated'].forEach(function (k) {
      var n = num(c[k], 0), b = el('button', 'chip' + (n ? '' : ' zero'));
      b.dataset.f = k;
      b.title = 'show only ' + k;
      var d = el('span', 'dot');
      d.style.background = 'var(--' + (k === 'tolerated' ? 'tol' : dotVar(k)) + ')';
      b.appendChild(d);
      b.appendChild(el('b', '', n));
      b.appendChild(document.createTextNode(k));
      box.appendChild(b);
    });
    var w = $('warnings');
    (Array.isArray(D.warnings) ? D.warnings : []).forEach(function (x) { w.appendChild(el('div', 'warn', '\u26a0 ' + str(x))); });
    document.title = 'baton \u00b7 ' + str(RUN.name || RUN.plan || '') + ' \u00b7 ' + st;
  }
  function table(boxId, rows, empty) {
    var box = $(boxId);
    if (!rows.length) { box.appendChild(el('div', 'none', empty)); return; }
    var tb = el('table'), max = rows[0].v || 1;
    rows.forEach(function (r, k) {
      var tr = el('tr', r.i !== undefined ? 'click' : '');
      if (r.i !== undefined) tr.dataset.i = r.i;
      tr.appendChild(el('td', 'n', k + 1));
      var td = el('td');
      var nm = el('div', 'name', r.name);
      nm.title = r.name;
      td.appendChild(nm);
      if (r.sub) td.appendChild(el('div', 'sub', r.sub));
      tr.appendChild(td);
      var d = el('td', 'd'), mb = el('span', 'mb');
      mb.style.width = Math.max(2, Math.round(60 * r.v / max)) + 'px';
      d.appendChild(mb);
      d.appendChild(document.createTextNode(r.text));
      tr.appendChild(d);
      tb.appendChild(tr);
    });
    box.appendChild(tb);
  }
  function ranks() {
    var done = TASKS.filter(function (t) { return t.d !== null && t.st !== 'skipped'; });
    done.sort(function (a, b) { return b.d - a.d; });
    table('slow-tasks', done.slice(0, 10).map(function (t) {
      return {
        i: t.i, v: t.d, text: dur(t.d), name: t.id,
        sub: [t.label, t.st + (t.tolerated ? ' (tolerated)' : ''), t.maxAttempt > 1 ? 'attempt ' + t.attempt : ''].filter(Boolean).join(' \u00b7 ')
      };
    }), 'No finished task.');
    var hosts = {}, hl = [];
    TASKS.forEach(function (t) {
      if (t.host === null || t.d === null) return;
      var h = hosts['k' + t.host];
      if (!h) { h = hosts['k' + t.host] = { name: t.host, total: 0, max: 0, n: 0, bad: 0, slow: t }; hl.push(h); }
      h.total += t.d;
      h.n++;
      if (t.st === 'failed' || t.st === 'timeout') h.bad++;
      if (t.d >= h.max) { h.max = t.d; h.slow = t; }
    });
    hl.sort(function (a, b) { return b.total - a.total; });
    table('slow-hosts', hl.slice(0, 10).map(function (h) {
      return {
        i: h.slow.i, v: h.total, text: dur(h.total), name: '@' + h.name,
        sub: h.n + ' tasks \u00b7 max ' + dur(h.max) + (h.bad ? ' \u00b7 ' + h.bad + ' failed' : '')
      };
    }), 'No remote host in this run: every task ran locally.');
    var steps = STEPS.filter(function (s) {
      return typeof s.start_ms === 'number' && typeof s.end_ms === 'number' && str(s.id).indexOf('#') < 0 && s.kind !== 'barrier';
    });
    steps.sort(function (a, b) { return (b.end_ms - b.start_ms) - (a.end_ms - a.start_ms); });
    table('slow-steps', steps.slice(0, 10).map(function (s) {
      var d = s.end_ms - s.start_ms;
      return { v: d, text: dur(d), name: str(s.id), sub: [str(s.kind), s.status ? str(s.status) : ''].filter(Boolean).join(' \u00b7 ') };
    }), 'No finished step.');
  }

  /* ---- the detail panel: text only, through textContent ---- */
  function select(i, scroll) {
    var t = TASKS[i];
    if (!t) return;
    var old = canvas.querySelector('.bar.sel');
    if (old) old.classList.remove('sel');
    selected = i;
    var bar = canvas.querySelector('.bar[data-i="' + i + '"]');
    if (bar) {
      bar.classList.add('sel');
      if (scroll) {
        var g = bar.closest('.grp');
        if (g && g.classList.contains('collapsed')) g.classList.remove('collapsed');
        bar.scrollIntoView({ block: 'center', inline: 'nearest' });
      }
    }
    var d = $('detail');
    d.textContent = '';
    var hd = el('div', 'dh');
    var pill = el('span', 'pill s-' + t.st, t.tolerated ? t.st + ' \u00b7 tolerated' : t.st);
    if (t.tolerated) pill.style.background = 'var(--tol)';
    hd.appendChild(el('div', 'tid', t.id));
    hd.appendChild(pill);
    var x = el('button', 'x', '\u00d7');
    x.title = 'close';
    x.addEventListener('click', clearDetail);
    hd.appendChild(x);
    d.appendChild(hd);
    if (t.label !== null) d.appendChild(el('div', 'lbl', t.label));
    var dl = el('dl');
    function row(k, v, cls) {
      if (v === null || v === undefined || v === '') return;
      dl.appendChild(el('dt', '', k));
      dl.appendChild(el('dd', cls || '', v));
    }
    row('step', t.step);
    row('host', t.host);
    if (t.item !== null) row('item', str(t.item));
    row('attempt', t.attempt + (t.maxAttempt > 1 ? ' of ' + t.maxAttempt : ''));
    row('status', t.st + (t.tolerated ? ' (tolerated: the run went on)' : '') + (t.reused ? ' (reused from an earlier run)' : ''),
      t.st === 'failed' || t.st === 'timeout' ? 'bad' : '');
    row('exit code', t.exit_code === null || t.exit_code === undefined ? null : str(t.exit_code), t.exit_code ? 'bad' : '');
    row('signal', t.signal === null || t.signal === undefined ? null : sigName(t.signal), 'bad');
    row('reason', t.reason === null || t.reason === undefined ? null : str(t.reason));
    row('started', '+' + dur(t.s));
    row('duration', t.d === null ? 'still running' : dur(t.d));
    d.appendChild(dl);
    var same = TASKS.filter(function (u) { return u.id === t.id; });
    if (same.length > 1) {
      d.appendChild(el('h3', '', 'attempts'));
      var at = el('div', 'atts');
      same.forEach(function (u) {
        var b = el('button', u.i === t.i ? 'on' : '', u.attempt + ' \u00b7 ' + u.st + ' \u00b7 ' + dur(u.d));
        b.addEventListener('click', function () { select(u.i, true); });
        at.appendChild(b);
      });
      d.appendChild(at);
    }
    d.appendChild(el('h3', '', 'command'));
    d.appendChild(el('pre', 'cmd', t.command || '(none)'));
    d.appendChild(el('h3', '', 'output' + (t.output.length ? ' \u2014 last ' + t.output.length + ' lines' : '')));
    if (t.dropped) d.appendChild(el('div', 'note', t.dropped + ' earlier line' + (t.dropped === 1 ? '' : 's') + ' not kept'));
    var pre = el('pre', 'out');
    if (!t.output.length) pre.appendChild(el('div', '', '(no output)'));
    t.output.forEach(function (l) {
      var isErr = Array.isArray(l) && l[0] === 'e';
      pre.appendChild(el('div', isErr ? 'e' : '', Array.isArray(l) ? str(l[1]) : str(l)));
    });
    d.appendChild(pre);
  }
  /* A link to a task: PAGE.html#task=ID (its last attempt) or #task=ID&attempt=N. */
  function fromHash() {
    var m = /^#task=([^&]*)(?:&attempt=(\d+))?$/.exec(location.hash), id;
    if (!m) return null;
    try { id = decodeURIComponent(m[1]); } catch (e) { return null; }
    var same = TASKS.filter(function (t) { return t.id === id; });
    var want = m[2] ? +m[2] : Infinity;
    return same.filter(function (t) { return t.attempt === want; })[0] || same[same.length - 1] || null;
  }
  function clearDetail() {
    var old = canvas.querySelector('.bar.sel');
    if (old) old.classList.remove('sel');
    selected = -1;
    var d = $('detail');
    d.textContent = '';
    d.appendChild(el('div', 'empty', 'Click a bar, or a row of the lists below, to see its command, exit code, reason and output.'));
  }

  /* ---- interaction ---- */
  function applyFilter() {
    var q = $('q').value.trim().toLowerCase(), bars = canvas.getElementsByClassName('bar');
    if (!q && !filter && !canvas.querySelector('.bar.dim')) return;
    for (var k = 0; k < bars.length; k++) {
      var b = bars[k];
      var out = filter && (filter === 'tolerated' ? !b.classList.contains('tolerated') : !b.classList.contains('st-' + filter));
      var t = TASKS[+b.dataset.i];
      var miss = q && (t.id + ' ' + (t.label || '') + ' ' + (t.host || '')).toLowerCase().indexOf(q) < 0;
      b.classList.toggle('dim', !!(out || miss));
    }
  }
  function wire() {
    chart.addEventListener('click', function (ev) {
      var b = ev.target.closest('.bar');
      if (b) { select(+b.dataset.i, false); return; }
      var gh = ev.target.closest('.gh');
      if (gh) gh.parentNode.classList.toggle('collapsed');
    });
    chart.addEventListener('mousemove', function (ev) {
      var b = ev.target.closest('.bar');
      if (!b) { tip.style.display = 'none'; return; }
      var t = TASKS[+b.dataset.i];
      tip.textContent = '';
      tip.appendChild(el('div', 'tid', t.id));
      if (t.label !== null) tip.appendChild(el('div', '', t.label));
      tip.appendChild(el('div', 'tm', t.st + (t.tolerated ? ' (tolerated)' : '') + ' \u00b7 ' + (t.d === null ? 'running' : dur(t.d)) +
        ' \u00b7 +' + dur(t.s) + (t.maxAttempt > 1 ? ' \u00b7 attempt ' + t.attempt + '/' + t.maxAttempt : '')));
      tip.style.display = 'block';
      var x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      tip.style.left = Math.max(4, x) + 'px';
      tip.style.top = (ev.clientY + 16) + 'px';
    });
    chart.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
    document.querySelector('.ranks').addEventListener('click', function (ev) {
      var tr = ev.target.closest('tr.click');
      if (tr) select(+tr.dataset.i, true);
    });
    $('counts').addEventListener('click', function (ev) {
      var b = ev.target.closest('.chip');
      if (!b) return;
      filter = filter === b.dataset.f ? '' : b.dataset.f;
      Array.prototype.forEach.call(document.querySelectorAll('.chip'), function (c) { c.classList.toggle('on', c.dataset.f === filter); });
      applyFilter();
    });
    $('q').addEventListener('input', applyFilter);
    $('mode').addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b || b.dataset.m === mode) return;
      mode = b.dataset.m;
      Array.prototype.forEach.call(this.children, function (c) { c.classList.toggle('on', c.dataset.m === mode); });
      render();
    });
    $('zoom').addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b) return;
      var frac = (chart.scrollLeft + chart.clientWidth / 2) / Math.max(1, chart.scrollWidth);
      zoom = b.dataset.z === 'in' ? Math.min(zoom * 2, 256) : b.dataset.z === 'out' ? Math.max(zoom / 2, 1) : 1;
      var top = chart.scrollTop;
      render();
      chart.scrollTop = top;
      chart.scrollLeft = frac * chart.scrollWidth - chart.clientWidth / 2;
    });
    document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') clearDetail(); });
    window.addEventListener('resize', function () { if (axisTr) layoutZoom(); });
  }

  function main() {
    chart = $('chart');
    canvas = $('canvas');
    tip = $('tip');
    var times = window.batonTimes = { start: performance.now() };
    load();
    times.parsed = performance.now();
    header();
    render();
    times.built = performance.now();
    ranks();
    wire();
    clearDetail();
    var linked = fromHash(), first = linked || TASKS.filter(function (t) {
      return (t.st === 'failed' || t.st === 'timeout') && !t.tolerated && t.attempt === t.maxAttempt;
    })[0];
    if (first) select(first.i, !!linked);
    times.listed = performance.now();
    document.body.offsetHeight; /* the first layout belongs to the render's time */
    times.laidout = performance.now();
    requestAnimationFrame(function () {
      setTimeout(function () { window.batonRendered = performance.now(); }, 0);
    });
  }
  try {
    main();
  } catch (e) {
    var b = $('err');
    b.style.display = 'block';
    b.textContent = 'This report could not be drawn: ' + e;
    throw e;
  }
})();
