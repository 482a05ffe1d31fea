// hpsearch dashboard: lays out the JSON the server builds (server/dashboard/dashboard_views.h).
// Live: polls api/studies and api/study?id=ID every second and redraws only what changed.
// Frozen (report.html): window.HPSEARCH_FROZEN holds both documents and nothing is fetched.
(function () {
  'use strict';
  var POLL_MS = 1000;
  var frozen = window.HPSEARCH_FROZEN || null;
  var selected = null;       // study id
  var lastStudies = '';      // the text of the last answers, to skip redraws
  var lastStudy = '';
  var study = null;          // the parsed study document
  var sort = { key: 'number', desc: false };
  var chartText = {};        // chart id -> svg text shown
  var ROWS_STEP = 200;
  var shownRows = ROWS_STEP; // trial rows drawn (the button under the table adds more)

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined || v === '') return '';
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return String(v);
      var a = Math.abs(v);
      return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(3) : v.toFixed(4);
    }
    return String(v);
  }
  function duration(s) {
    if (s === null || s === undefined) return '';
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + 'h' : '') + (h || m ? String(m).padStart(h ? 2 : 1, '0') + 'm' : '') +
           String(r).padStart(h || m ? 2 : 1, '0') + 's';
  }
  function status(text) { $('status').textContent = text; }

  function renderStudies(doc) {
    var body = $('studies').tBodies[0];
    body.textContent = '';
    doc.studies.forEach(function (s) {
      var tr = el('tr', null, 'study-row' + (s.id === selected ? ' selected' : ''));
      tr.dataset.study = s.id;
      tr.appendChild(el('td', s.name));
      tr.appendChild(el('td', s.state, 'state-' + s.state));
      tr.appendChild(el('td', s.budget_used + '/' + s.budget_total, 'num'));
      tr.appendChild(el('td', s.best_value === null ? '' :
          fmt(s.best_value) + ' (trial ' + s.best_trial + ')', 'num'));
      tr.appendChild(el('td', duration(s.elapsed_seconds), 'num'));
      tr.appendChild(el('td', duration(s.eta_seconds), 'num'));
      tr.addEventListener('click', function () { select(s.id); });
      body.appendChild(tr);
    });
    if (!doc.studies.length) $('message').textContent = 'No study in this database yet.';
    else $('message').textContent = '';
  }

  function select(id) {
    if (id === selected) return;
    selected = id;
    lastStudy = '';
    chartText = {};
    $('charts').textContent = '';
    if (!frozen) history.replaceState(null, '', '#study=' + encodeURIComponent(id));
    Array.prototype.forEach.call(document.querySelectorAll('tr.study-row'), function (tr) {
      tr.classList.toggle('selected', tr.dataset.study === id);
    });
    if (!frozen) poll();
  }

  function renderSummary(s) {
    $('study').hidden = false;
    $('study-title').textContent = 'Study ' + s.name + ' (' + s.id + ')';
    var box = $('study-summary');
    box.textContent = '';
    [['state', s.state + (s.state_reason ? ': ' + s.state_reason : '')],
     ['budget used', s.budget_used + '/' + s.budget_total],
     ['running', s.running],
     ['objective', s.metric + ' (' + s.direction + ')'],
     ['best so far', s.best_value === null ? 'none yet' : fmt(s.best_value) + ' (trial ' + s.best_trial + ')'],
     ['elapsed', duration(s.elapsed_seconds)],
     ['ETA', s.eta_seconds === null ? '' : duration(s.eta_seconds)]].forEach(function (kv) {
      var span = el('span', null, 'summary-' + kv[0].replace(/ /g, '-'));
      span.appendChild(el('b', kv[0] + ': '));
      span.appendChild(document.createTextNode(String(kv[1])));
      box.appendChild(span);
    });
  }

  function renderFinal(f) {
    var section = $('final-section');
    if (!f) { section.hidden = true; return; }
    section.hidden = false;
    var body = $('final').tBodies[0];
    body.textContent = '';
    function row(k, v) {
      var tr = el('tr'); tr.appendChild(el('th', k)); tr.appendChild(el('td', fmt(v), 'num'));
      body.appendChild(tr);
    }
    row('trial', f.number + ' (retrains trial ' + f.source_trial + '), ' + f.state);
    Object.keys(f.test).forEach(function (k) { row(k, f.test[k]); });
    Object.keys(f.train).forEach(function (k) { row('train ' + k, f.train[k]); });
    (f.files || []).forEach(function (file) {
      var tr = el('tr', null, 'adapter-file');
      tr.appendChild(el('th', 'adapter file'));
      var td = el('td');
      var a = el('a', file.name + ' (' + file.bytes + ' bytes)');
      a.href = file.url;
      a.setAttribute('download', '');
      td.appendChild(a);
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  function renderImportance(imp) {
    var section = $('importance-section');
    section.hidden = !imp;
    if (!imp) return;
    var body = $('importance').tBodies[0];
    body.textContent = '';
    $('importance-message').textContent = imp.error ? imp.error :
        'from ' + imp.trials_used + ' complete trials' +
        (imp.skipped_trials ? ' (' + imp.skipped_trials + ' left out)' : '');
    (imp.parameters || []).forEach(function (p, i) {
      var tr = el('tr', null, 'importance-row');
      tr.appendChild(el('td', i + 1, 'num'));
      tr.appendChild(el('td', p.name));
      tr.appendChild(el('td', fmt(p.importance), 'num'));
      body.appendChild(tr);
    });
  }

  function renderCharts(charts) {
    var box = $('charts');
    var seen = {};
    charts.forEach(function (c) {
      seen[c.id] = true;
      var div = document.getElementById('chart-' + c.id);
      if (!div) {
        div = el('div', null, 'chart');
        div.id = 'chart-' + c.id;
        div.dataset.chart = c.id;
        box.appendChild(div);
      }
      if (chartText[c.id] !== c.svg) {
        chartText[c.id] = c.svg;
        div.innerHTML = c.svg;  // drawn and escaped by the server's SVG writer
        div.appendChild(el('div', c.title, 'caption'));
      }
    });
    Array.prototype.slice.call(box.children).forEach(function (div) {
      if (!seen[div.dataset.chart]) { box.removeChild(div); delete chartText[div.dataset.chart]; }
    });
  }

  // The trial table's columns: fixed ones, one per parameter, one per epoch and metric.
  function columns(s) {
    var cols = [
      { key: 'number', title: '#', value: function (t) { return t.number; } },
      { key: 'kind', title: 'kind', value: function (t) { return t.kind; } },
      { key: 'state', title: 'state', value: function (t) { return t.state; } },
      { key: 'objective', title: s.metric, value: function (t) { return t.objective; } }];
    s.params.forEach(function (p) {
      cols.push({ key: 'param:' + p, title: p, value: function (t) { return t.params[p]; },
                  text: function (t) { return t.params_text[p]; } });
    });
    var maxEpoch = 0, metrics = {};
    s.trials.forEach(function (t) {
      t.epochs.forEach(function (e) {
        maxEpoch = Math.max(maxEpoch, e.epoch);
        Object.keys(e).forEach(function (k) { if (k !== 'epoch') metrics[k] = true; });
      });
    });
    var order = ['train_loss', 'val_loss', 'val_accuracy', 'val_f1', 'val_f1_macro'];
    var names = order.filter(function (m) { return metrics[m]; }).concat(
        Object.keys(metrics).filter(function (m) { return order.indexOf(m) < 0; }).sort());
    for (var ep = 1; ep <= maxEpoch; ++ep) {
      names.forEach(function (m) {
        var epoch = ep;
        cols.push({ key: 'e' + epoch + ':' + m, title: 'ep' + epoch + ' ' + m, value: function (t) {
          for (var i = 0; i < t.epochs.length; ++i) {
            if (t.epochs[i].epoch === epoch) return t.epochs[i][m];
          }
          return null;
        } });
      });
    }
    // Why a trial was pruned; a running one's progress and time left (the server's one estimate).
    if (s.trials.some(function (t) { return t.prune_reason; })) {
      cols.push({ key: 'pruned', title: 'pruned because', value: function (t) {
        var r = t.prune_reason;
        if (!r) return '';
        return (r.rule || 'pruned') + (r.epoch ? ' at epoch ' + r.epoch : '') +
            (r.value !== undefined ? ': ' + fmt(Number(r.value)) : '') +
            (r.threshold !== undefined ? ' vs ' + fmt(Number(r.threshold)) : '');
      } });
    }
    if (s.trials.some(function (t) { return t.progress || t.eta_seconds !== undefined; })) {
      cols.push({ key: 'progress', title: 'progress', value: function (t) {
        var p = t.progress || {};
        if (t.state !== 'running') return '';
        var parts = [];
        if (p.epochs) parts.push('epoch ' + (p.epoch || 0) + '/' + p.epochs);
        if (p.total_steps) parts.push('step ' + Number(p.step || 0) + '/' + Number(p.total_steps));
        if (t.eta_seconds) parts.push('ETA ' + duration(Number(t.eta_seconds)));
        return parts.join(', ');
      } });
    }
    cols.push({ key: 'attempts', title: 'attempts', value: function (t) { return t.attempts; } });
    cols.push({ key: 'worker', title: 'worker', value: function (t) { return t.worker; } });
    cols.push({ key: 'error', title: 'error', value: function (t) {
      return [t.error].concat(t.attempt_errors).filter(Boolean).join('\n'); } });
    return cols;
  }

  function compare(a, b) {
    var an = a === null || a === undefined || a === '', bn = b === null || b === undefined || b === '';
    if (an || bn) return an === bn ? 0 : (an ? 1 : -1);  // empty cells last either way
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a).localeCompare(String(b));
  }

  function renderTrials(s) {
    var cols = columns(s);
    var table = $('trials');
    var head = table.tHead;
    head.textContent = '';
    var htr = el('tr');
    cols.forEach(function (c) {
      var th = el('th', c.title);
      th.dataset.key = c.key;
      if (sort.key === c.key) th.className = sort.desc ? 'sorted-desc' : 'sorted-asc';
      th.addEventListener('click', function () {
        sort = { key: c.key, desc: sort.key === c.key ? !sort.desc : false };
        renderTrials(study);
      });
      htr.appendChild(th);
    });
    head.appendChild(htr);
    var col = cols.filter(function (c) { return c.key === sort.key; })[0] || cols[0];
    var rows = s.trials.slice().sort(function (a, b) {
      var r = compare(col.value(a), col.value(b));
      if (r !== 0 && sort.desc && col.value(a) !== null && col.value(b) !== null) r = -r;
      return r || a.number - b.number;
    });
    var body = table.tBodies[0];
    body.textContent = '';
    // A long table is drawn 200 rows at a time (sorted first): thousands of rows cost the browser
    // seconds of layout on every update.
    var more = $('trials-more');
    if (rows.length > shownRows) {
      more.hidden = false;
      more.textContent = 'show ' + Math.min(rows.length - shownRows, ROWS_STEP) + ' more of ' +
          (rows.length - shownRows) + ' trials not shown';
      rows = rows.slice(0, shownRows);
    } else {
      more.hidden = true;
    }
    rows.forEach(function (t) {
      var tr = el('tr', null, 'trial-row');
      tr.dataset.trial = t.number;
      cols.forEach(function (c) {
        var v = c.text ? c.text(t) : c.value(t);
        var cls = c.key === 'state' ? 'state-' + t.state : (c.key === 'error' ? 'error' :
            (typeof c.value(t) === 'number' ? 'num' : ''));
        tr.appendChild(el('td', fmt(v), cls));
      });
      tr.addEventListener('mouseenter', function () { highlight(t.number, true); });
      tr.addEventListener('mouseleave', function () { highlight(t.number, false); });
      body.appendChild(tr);
    });
  }

  // A compact chart element (a large study's; svg_plot.h, Series::compact): a <path> whose subpaths,
  // each opening with its one "M", belong to the trials its data-ids lists in order.
  function subpaths(e) {
    if (!e._subpaths) {
      var ids = e.getAttribute('data-ids').split(' ');
      var parts = e.getAttribute('d').split('M').slice(1);
      e._subpaths = { ids: ids, parts: parts };
    }
    return e._subpaths;
  }

  // Hovering a trial row highlights that trial's lines and points in every chart; in a compact
  // chart a copy of its subpaths is drawn on top (class "overlay").
  function highlight(number, on) {
    Array.prototype.forEach.call(document.querySelectorAll('#charts .trial-' + number),
        function (e) { e.classList.toggle('highlight', on); });
    Array.prototype.forEach.call(document.querySelectorAll('#charts .overlay'),
        function (e) { e.parentNode.removeChild(e); });
    if (on) {
      Array.prototype.forEach.call(document.querySelectorAll('#charts path[data-ids]'), function (e) {
        var sp = subpaths(e), d = '', id = String(number);
        for (var i = 0; i < sp.ids.length; ++i) if (sp.ids[i] === id) d += 'M' + sp.parts[i];
        if (!d) return;
        var copy = e.cloneNode(false);
        copy.removeAttribute('data-ids');
        copy.setAttribute('d', d);
        copy.setAttribute('class', e.getAttribute('class') + ' overlay highlight');
        e.ownerSVGElement.appendChild(copy);
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll('tr.trial-row[data-trial="' + number + '"]'),
        function (e) { e.classList.toggle('highlight', on); });
  }

  // How long each part of the last redraw took, in ms (window.hpsearchTimings; for benchmarks).
  var timings = window.hpsearchTimings = {};
  function timed(name, f) {
    var t0 = performance.now();
    f();
    timings[name] = Math.round(performance.now() - t0);
  }

  function renderStudy(s) {
    study = s;
    timed('summary', function () {
      renderSummary(s);
      renderImportance(s.importance);
      renderFinal(s.final);
    });
    timed('charts', function () { renderCharts(s.charts); });
    timed('trials', function () { renderTrials(s); });
    // When the browser has laid out and painted this redraw: the next frame's callback runs before
    // that frame's layout and paint, a task queued from it after them. In ms from the page's
    // request (performance.now() counts from the navigation's start).
    requestAnimationFrame(function () {
      setTimeout(function () { timings.drawn = Math.round(performance.now()); }, 0);
    });
  }

  // A request that hangs (a server gone mid-answer) is abandoned after 30 s, so polling goes on.
  function getJson(url) {
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, 30000);
    return fetch(url, { credentials: 'same-origin', cache: 'no-store', signal: abort.signal })
        .then(function (r) {
          return r.text().then(function (text) {
            if (!r.ok) throw new Error(url + ': HTTP ' + r.status + ': ' + text);
            return text;
          });
        }).finally(function () { clearTimeout(timer); });
  }

  var polling = false;
  function poll() {
    if (polling) return;
    polling = true;
    getJson('api/studies').then(function (text) {
      var doc = JSON.parse(text);
      if (text !== lastStudies) { lastStudies = text; renderStudies(doc); }
      if (selected === null && doc.studies.length) {
        var m = /#study=([^&]+)/.exec(location.hash);
        var want = m ? decodeURIComponent(m[1]) : doc.studies[0].id;
        select(doc.studies.some(function (s) { return s.id === want; }) ? want : doc.studies[0].id);
        renderStudies(doc);
      }
      if (selected === null) return null;
      return getJson('api/study?id=' + encodeURIComponent(selected)).then(function (text) {
        if (text !== lastStudy) {
          lastStudy = text;
          var doc;
          timed('parse', function () { doc = JSON.parse(text); });
          renderStudy(doc);
        }
      });
    }).then(function () {
      status('updated ' + new Date().toLocaleTimeString());
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    }, function (e) {
      status('update failed: ' + e.message);
    }).then(function () { polling = false; });
  }

  // A compact chart element has no <title> per trial: the pointer over one shows the nearest
  // subpath's trial (its anchor: the subpath's first point, or its nearest vertex for a line).
  function nearestTrial(e, x, y) {
    var sp = subpaths(e), best = null, bestD = Infinity;
    for (var i = 0; i < sp.parts.length; ++i) {
      var nums = sp.parts[i].match(/-?[\d.]+/g) || [];
      var line = e.getAttribute('fill') === 'none' && /L/.test(sp.parts[i]);
      for (var k = 0; k + 1 < nums.length; k += 2) {
        var dx = Number(nums[k]) - x, dy = Number(nums[k + 1]) - y, dd = dx * dx + dy * dy;
        if (dd < bestD) { bestD = dd; best = sp.ids[i]; }
        if (!line) break;
      }
    }
    return best;
  }
  function trialTip(number) {
    var t = study && study.trials.filter(function (t) { return String(t.number) === number; })[0];
    if (!t) return 'trial ' + number;
    var text = 'trial ' + t.number + ' (' + t.state + ')';
    Object.keys(t.params_text).forEach(function (k) { text += ', ' + k + '=' + t.params_text[k]; });
    return text + ': ' + study.metric + ' ' + (t.objective === null ? 'none' : fmt(t.objective));
  }
  var tip = el('div', null, 'chart-tip');
  tip.hidden = true;
  document.body.appendChild(tip);
  $('charts').addEventListener('mousemove', function (ev) {
    var e = ev.target;
    if (!e.getAttribute || !e.getAttribute('data-ids')) { tip.hidden = true; return; }
    var svg = e.ownerSVGElement, m = svg.getScreenCTM();
    if (!m) return;
    var p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    p = p.matrixTransform(m.inverse());
    // A marker's "M" is at its left (circle) or top: the anchor nearest the pointer still wins.
    var number = nearestTrial(e, p.x, p.y);
    if (number === null) { tip.hidden = true; return; }
    tip.textContent = trialTip(number);
    tip.style.left = (ev.pageX + 12) + 'px';
    tip.style.top = (ev.pageY + 12) + 'px';
    tip.hidden = false;
  });
  $('charts').addEventListener('mouseleave', function () { tip.hidden = true; });

  $('trials-more').addEventListener('click', function () {
    shownRows += ROWS_STEP;
    if (study) renderTrials(study);
  });

  if (frozen) {
    renderStudies(frozen.studies);
    selected = frozen.study.id;
    renderStudies(frozen.studies);
    renderStudy(frozen.study);
    status('frozen report, written ' + frozen.written);
    document.body.dataset.updates = '1';
  } else {
    poll();
    setInterval(poll, POLL_MS);
  }
})();
