/* 助企帮帮团 · 数据看板 (/insight) and 待复核问题 (/insight/review).
 * Plain JS and ECharts (/static/vendor/echarts.min.js). Every number a chart shows is also in a
 * real <table> under it (for screen readers and for copying), and each table links its CSV.
 * Text from users (the inbox's questions) goes into the DOM through textContent only. */
(function () {
  'use strict';

  const REVIEW = location.pathname.replace(/\/+$/, '') === '/insight/review';
  const ROLE_LABELS = { specialist: '专员', supervisor: '主管' };
  const LEVELS = [
    ['very_satisfied', '非常满意', '#2f8a57'], ['satisfied', '满意', '#86c06c'], ['basically_satisfied', '基本满意', '#c3c9d1'],
    ['dissatisfied', '不满意', '#f0a04b'], ['very_dissatisfied', '非常不满意', '#d64541'],
  ];
  const OUTCOMES = [
    ['answered_rate', '已回答', '#2f8a57'], ['asked_back_rate', '反问澄清', '#2d6cc0'],
    ['out_of_scope_rate', '婉拒（超出范围）', '#e8a92c'], ['handed_over_rate', '转人工', '#8e5bd0'],
  ];
  const RETRAIN_STATES = {
    idle: '空闲', training: '训练中', evaluating: '评估中', swapping: '切换模型中', done: '已完成', failed: '失败',
    unknown: '状态文件无法读取',
  };
  const FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif';

  const state = { me: null, filters: {}, labels: null, charts: {}, built: false, retrainTimer: null };
  const $ = (id) => document.getElementById(id);

  /* ---------- small helpers ---------- */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showError(message) {
    const banner = $('error');
    banner.textContent = message;
    banner.hidden = false;
    clearTimeout(showError.timer);
    showError.timer = setTimeout(() => { banner.hidden = true; }, 10000);
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: 'same-origin' }, options || {}));
    if (response.status === 401) {
      location.href = '/login';
      throw new Error('请先登录');
    }
    let body = null;
    try { body = await response.json(); } catch (ignored) { body = null; }
    if (!response.ok) throw new Error((body && body.error) || `请求失败（${response.status}）`);
    return body;
  }

  const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
  const num = (v) => (v === null || v === undefined ? '—' : String(v));
  const pad = (n) => String(n).padStart(2, '0');

  function when(value) {
    if (value === null || value === undefined || value === '') return '—';
    if (typeof value === 'number') {
      const d = new Date(value * 1000);
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
    }
    return String(value);
  }

  // the district's calendar day (UTC+8), n days from today
  function districtDay(offset) {
    return new Date(Date.now() + 8 * 3600 * 1000 + (offset || 0) * 86400 * 1000).toISOString().slice(0, 10);
  }

  const departmentName = (id) => (id ? (state.labels.departments[id] || id) : '未关联部门');
  const topicTitle = (id) => (id ? (state.labels.topics[id] || id) : '未关联主题');
  const channelLabel = (id) => state.labels.channels[id] || id;

  /* ---------- filters ---------- */

  function initFilters() {
    const params = new URLSearchParams(location.search);
    state.filters = {
      from: params.get('from') || districtDay(-29),
      to: params.get('to') || districtDay(0),
      department: params.get('department') || '',
      channel: params.get('channel') || '',
      threshold: params.get('threshold') || '0.3',
      labelled: params.get('labelled') === '1' ? '1' : '',
    };
    for (const node of document.querySelectorAll('.review-only')) node.hidden = !REVIEW;
    $('tab-dashboard').setAttribute('aria-current', REVIEW ? 'false' : 'page');
    $('tab-review').setAttribute('aria-current', REVIEW ? 'page' : 'false');
    document.title = REVIEW ? '助企帮帮团 · 待复核问题' : '助企帮帮团 · 数据看板';
    writeForm();
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      readForm();
      history.replaceState(null, '', `${location.pathname}?${query(state.filters, true)}`);
      load();
    });
  }

  function writeForm() {
    $('f-from').value = state.filters.from;
    $('f-to').value = state.filters.to;
    $('f-department').value = state.filters.department;
    $('f-channel').value = state.filters.channel;
    $('f-threshold').value = state.filters.threshold;
    $('f-labelled').checked = state.filters.labelled === '1';
  }

  function readForm() {
    state.filters.from = $('f-from').value;
    state.filters.to = $('f-to').value;
    state.filters.department = $('f-department').value;
    state.filters.channel = $('f-channel').value;
    state.filters.threshold = $('f-threshold').value;
    state.filters.labelled = $('f-labelled').checked ? '1' : '';
  }

  // the query of the filters: the table ones (from, to, department, channel), or all
  function query(filters, all) {
    const keys = all ? Object.keys(filters) : ['from', 'to', 'department', 'channel'];
    const params = new URLSearchParams();
    for (const key of keys) if (filters[key]) params.set(key, filters[key]);
    return params.toString();
  }

  function fillSelect(select, entries, emptyLabel) {
    const chosen = select.value;
    clear(select);
    select.appendChild(new Option(emptyLabel, ''));
    for (const [value, label] of entries) select.appendChild(new Option(label, value));
    select.value = chosen;
  }

  function applyLabels(labels, applied) {
    const first = state.labels === null;
    state.labels = labels;
    if (first) {
      fillSelect($('f-channel'), Object.entries(labels.channels), '全部渠道');
      fillSelect($('f-department'), Object.entries(labels.departments), '全部部门');
      writeForm();
    }
    // what the server applied (a specialist's department is theirs whatever was asked)
    Object.assign(state.filters, { department: applied.department, channel: applied.channel });
    $('f-department').value = applied.department;
  }

  function showSync(sync) {
    const node = $('sync-status');
    node.textContent = sync.ok ? `${sync.message}（${when(sync.at)}）` : sync.message;
    node.classList.toggle('warn', !sync.ok);
  }

  /* ---------- charts ---------- */

  function sum(rows, key) {
    return rows.reduce((total, row) => total + (row[key] || 0), 0);
  }

  // rows grouped by key(row), each group's levels summed, in first-seen (or given) order
  function levelsBy(rows, key) {
    const groups = new Map();
    for (const row of rows) {
      const k = key(row);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(row);
    }
    return [...groups.entries()].map(([k, group]) => {
      const counts = LEVELS.map(([level]) => sum(group, level));
      const total = counts.reduce((a, b) => a + b, 0);
      const bad = counts[3] + counts[4];
      return { key: k, counts, total, badRate: total ? bad / total : 0 };
    });
  }

  const base = (extra) => Object.assign({
    textStyle: { fontFamily: FONT },
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { bottom: 0, type: 'scroll' },
    grid: { left: 8, right: 24, top: 30, bottom: 34, containLabel: true },
    animation: false,
  }, extra);

  const empty = (rows) => (rows.length ? {} : {
    graphic: { type: 'text', left: 'center', top: 'middle', style: { text: '所选范围内没有数据', fill: '#8a94a3', fontSize: 14 } },
  });

  // every day of the range asked for (or of the data), so that a day without questions shows
  function days(rows, filters) {
    const seen = rows.map((r) => r.date).sort();
    const first = filters.from || seen[0];
    const last = filters.to || seen[seen.length - 1];
    if (!first || !last) return [];
    const out = [];
    for (let d = new Date(`${first}T00:00:00Z`); out.length <= 400; d.setUTCDate(d.getUTCDate() + 1)) {
      const iso = d.toISOString().slice(0, 10);
      if (iso > last) return out;
      out.push(iso);
    }
    return [...new Set(seen)];  // a range too long to draw day by day: the days with data
  }

  function dailyChart(t, target, filters) {
    const rows = t.daily.rows;
    const dates = days(rows, filters);
    const channels = [...new Set(rows.map((r) => r.channel))].sort();
    const value = (date, channel) => sum(rows.filter((r) => r.date === date && r.channel === channel), 'questions');
    return {
      option: base(Object.assign({
        xAxis: { type: 'category', data: dates },
        yAxis: { type: 'value', name: '问题数', minInterval: 1 },
        series: channels.map((c) => ({ name: channelLabel(c), type: 'bar', stack: 'questions', data: dates.map((d) => value(d, c)) })),
      }, empty(rows))),
      head: ['日期', '渠道', '问题数', '已回答', '反问澄清', '婉拒', '转人工'],
      body: rows.map((r) => [r.date, channelLabel(r.channel), r.questions, r.answered, r.asked_back, r.out_of_scope, r.handed_over]),
    };
  }

  function topicsChart(t) {
    const rows = t.topics.rows;
    const top = rows.slice(0, 10).reverse();
    return {
      option: base(Object.assign({
        xAxis: { type: 'value', minInterval: 1 },
        yAxis: { type: 'category', data: top.map((r) => topicTitle(r.topic)), axisLabel: { width: 150, overflow: 'truncate' } },
        series: [
          { name: '已回答', type: 'bar', stack: 'q', color: '#2f8a57', data: top.map((r) => r.answered) },
          { name: '转人工', type: 'bar', stack: 'q', color: '#8e5bd0', data: top.map((r) => r.handed_over) },
          { name: '其他', type: 'bar', stack: 'q', color: '#c3c9d1', data: top.map((r) => r.questions - r.answered - r.handed_over) },
        ],
      }, empty(rows))),
      head: ['主题', '问题数', '已回答', '转人工', '已回答但文件未公布所问信息', '回答率'],
      body: rows.map((r) => [topicTitle(r.topic), r.questions, r.answered, r.handed_over, r.not_published, pct(r.answered_rate)]),
    };
  }

  function outcomesChart(t, target, filters) {
    const rows = t.outcomes.rows;
    const dates = days(rows, filters);
    const byDate = new Map(rows.map((r) => [r.date, r]));
    return {
      option: base(Object.assign({
        tooltip: { trigger: 'axis', valueFormatter: (v) => (v === '-' || v === undefined ? '无问题' : `${v}%`) },
        xAxis: { type: 'category', data: dates },
        yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
        series: OUTCOMES.map(([key, name, color]) => ({
          name, type: 'line', color, showSymbol: dates.length < 40, connectNulls: false,
          data: dates.map((d) => (byDate.has(d) ? +(byDate.get(d)[key] * 100).toFixed(1) : '-')),
        })),
      }, empty(rows))),
      head: ['日期', '问题数', ...OUTCOMES.map(([, name]) => `${name}占比`)],
      body: rows.map((r) => [r.date, r.questions, ...OUTCOMES.map(([key]) => pct(r[key]))]),
    };
  }

  function levelChart(groups, name) {
    return {
      option: base(Object.assign({
        xAxis: { type: 'category', data: groups.map((g) => g.label), axisLabel: { interval: 0, rotate: groups.length > 5 ? 30 : 0 } },
        yAxis: { type: 'value', name: '评价数', minInterval: 1 },
        series: LEVELS.map(([, level, color], i) => ({ name: level, type: 'bar', stack: 'levels', color, data: groups.map((g) => g.counts[i]) })),
      }, empty(groups))),
      head: [name, ...LEVELS.map(([, level]) => level), '合计', '差评率'],
      body: groups.map((g) => [g.label, ...g.counts, g.total, pct(g.badRate)]),
    };
  }

  function ratingsByDepartment(t) {
    const groups = levelsBy(t.ratings.rows, (r) => r.department).map((g) => Object.assign(g, { label: departmentName(g.key) }));
    return levelChart(groups, '部门');
  }

  function ratingsByTopic(t) {
    const groups = levelsBy(t.ratings.rows, (r) => r.topic).map((g) => Object.assign(g, { label: topicTitle(g.key) }));
    return levelChart(groups, '主题');
  }

  function ratingsWeekly(t) {
    const rows = [...t.ratings_weekly.rows].sort((a, b) => (a.week < b.week ? -1 : a.week > b.week ? 1 : 0));
    const groups = levelsBy(rows, (r) => r.week).map((g) => Object.assign(g, { label: `${g.key} 起` }));
    const chart = levelChart(groups, '周（周一起）');
    chart.option.yAxis = [chart.option.yAxis, { type: 'value', name: '差评率', max: 100, axisLabel: { formatter: '{value}%' }, splitLine: { show: false } }];
    chart.option.series.push({ name: '差评率', type: 'line', yAxisIndex: 1, color: '#1f3b63',
                               data: groups.map((g) => +(g.badRate * 100).toFixed(1)), tooltip: { valueFormatter: (v) => `${v}%` } });
    return chart;
  }

  function casesChart(t, target) {
    const rows = t.cases.rows;
    const bars = [['claim_median_hours', '认领等待（中位数）', '#9fc3ef'], ['claim_p90_hours', '认领等待（P90）', '#2d6cc0'],
                  ['resolve_median_hours', '办结用时（中位数）', '#f3c37a'], ['resolve_p90_hours', '办结用时（P90）', '#d9822b']];
    return {
      option: base(Object.assign({
        tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => (v === '-' || v === undefined ? '—' : `${v} 小时`) },
        xAxis: { type: 'category', data: rows.map((r) => departmentName(r.department)), axisLabel: { interval: 0, rotate: rows.length > 5 ? 30 : 0 } },
        yAxis: { type: 'value', name: '小时', max: (extent) => niceMax(Math.max(extent.max, target) * 1.1) },
        series: bars.map(([key, name, color], i) => Object.assign({
          name, type: 'bar', color, data: rows.map((r) => (r[key] === null ? '-' : r[key])),
        }, i === 3 ? { markLine: { symbol: 'none', lineStyle: { color: '#b3261e', type: 'dashed' },
                                   label: { formatter: `目标 ${target} 小时`, position: 'insideEndTop' }, data: [{ yAxis: target }] } } : {})),
      }, empty(rows))),
      head: ['部门', '案件数', '排队中', '处理中', '已解决', '未解决交回', '认领等待中位数（小时）', '认领等待P90（小时）',
             '办结用时中位数（小时）', '办结用时P90（小时）', '目标（小时）', '已可判定', '目标内解决', '目标内解决率'],
      body: rows.map((r) => [departmentName(r.department), r.cases, r.waiting, r.claimed, r.solved, r.handed_back,
                             num(r.claim_median_hours), num(r.claim_p90_hours), num(r.resolve_median_hours), num(r.resolve_p90_hours),
                             r.target_hours, r.decided, r.within_target, pct(r.within_target_share)]),
    };
  }

  // a round number at or above v (26.4 → 30, 0.55 → 0.6): the target line stays inside the chart
  function niceMax(v) {
    const step = 10 ** Math.floor(Math.log10(v));
    return +(Math.ceil(v / step) * step).toFixed(6);
  }

  function followupsChart(t) {
    const rows = t.followups.rows;
    const bars = [['bad_ratings', '差评数', '#d64541'], ['followup_cases', '跟进案件', '#9aa3ae'],
                  ['verify_done', '已回访核实', '#e8a92c'], ['rectify_done', '已整改', '#2d6cc0'],
                  ['feedback_done', '已反馈企业', '#86c06c'], ['closed_with_reply', '回复企业后办结', '#2f8a57']];
    return {
      option: base(Object.assign({
        xAxis: { type: 'category', data: rows.map((r) => departmentName(r.department)), axisLabel: { interval: 0, rotate: rows.length > 5 ? 30 : 0 } },
        yAxis: { type: 'value', name: '件数', minInterval: 1 },
        series: bars.map(([key, name, color]) => ({ name, type: 'bar', color, data: rows.map((r) => r[key]) })),
      }, empty(rows))),
      head: ['部门', '差评数', '跟进案件', '排队中', '处理中', '已解决', '未解决交回', '已回访核实', '已整改', '已反馈企业',
             '回复企业后办结', '回访核实中位天数', '整改中位天数', '反馈中位天数'],
      body: rows.map((r) => [departmentName(r.department), r.bad_ratings, r.followup_cases, r.waiting, r.claimed, r.solved,
                             r.handed_back, r.verify_done, r.rectify_done, r.feedback_done, r.closed_with_reply,
                             num(r.verify_median_days), num(r.rectify_median_days), num(r.feedback_median_days)]),
    };
  }

  function followupCasesTable(t) {
    const step = (day) => day || '未完成';
    return {
      head: ['案件', '部门', '创建', '回访核实', '整改', '反馈', '办结'],
      body: t.followup_cases.rows.map((r) => [`#${r.case_id}`, departmentName(r.department), r.created, step(r.verify),
                                              step(r.rectify), step(r.feedback), r.resolved || '未办结']),
    };
  }

  const CHARTS = [
    { id: 'daily', table: 'daily', title: '每日问题量（按渠道）', note: '每天收到的问题，按渠道堆叠；闲聊、表单填写、评价不计在内。', build: dailyChart },
    { id: 'topics', table: 'topics', title: '热门主题（前 10）', note: '问题数最多的主题：已回答、转人工和其他（反问、婉拒）。', build: topicsChart },
    { id: 'outcomes', table: 'outcomes', title: '回答结果占比（按日）', note: '已回答、反问澄清、婉拒、转人工各占当天问题的比例。', build: outcomesChart },
    { id: 'ratings-department', table: 'ratings', title: '好差评分布（按部门）', note: '网页答复评价与人工案件评价合计。', build: ratingsByDepartment },
    { id: 'ratings-topic', table: 'ratings', title: '好差评分布（按主题）', note: '网页答复评价与人工案件评价合计。', build: ratingsByTopic },
    { id: 'ratings-weekly', table: 'ratings_weekly', title: '好差评周趋势', note: '每周（自周一起）各等级评价数与差评率。', build: ratingsWeekly },
    { id: 'cases', table: 'cases', title: '人工案件：认领等待与办结用时', note: '按部门的中位数和 P90（小时），虚线为办结目标。', build: casesChart },
    { id: 'followups', table: 'followups', title: '差评跟进情况', note: '各部门收到的差评、差评跟进案件，以及完成回访核实、整改、反馈的案件数；中位天数从案件创建算到该步最近一次记录。', build: followupsChart },
  ];
  // tables without a chart: shown open, as a card of their own
  const TABLE_CARDS = [
    { id: 'followup-cases', table: 'followup_cases', title: '差评跟进明细', note: '每件差评跟进案件的创建、回访核实、整改、反馈和办结日期（各步以最近一次记录为准）。', build: followupCasesTable },
  ];

  function buildDashboard() {
    const grid = $('dashboard');
    for (const spec of CHARTS) {
      const card = el('section', 'card');
      card.id = `card-${spec.id}`;
      card.setAttribute('aria-labelledby', `title-${spec.id}`);
      const title = el('h2', null, spec.title);
      title.id = `title-${spec.id}`;
      const chart = el('div', 'chart');
      chart.id = `chart-${spec.id}`;
      chart.dataset.chart = spec.id;
      chart.setAttribute('role', 'img');
      chart.setAttribute('aria-label', `${spec.title}图表；数字见下方“查看数据表”`);
      const foot = el('div', 'card-foot');
      const details = el('details');
      details.appendChild(el('summary', null, '查看数据表'));
      const wrap = el('div', 'table-wrap');
      wrap.id = `table-${spec.id}`;
      details.appendChild(wrap);
      const csv = el('a', 'csv', '下载 CSV');
      csv.id = `csv-${spec.id}`;
      csv.setAttribute('download', '');
      foot.append(details, csv);
      card.append(title, el('p', 'note', spec.note), chart, foot);
      grid.appendChild(card);
      if (window.echarts) {
        state.charts[spec.id] = echarts.init(chart, null, { renderer: 'canvas' });
      } else {  // the chart library is not installed (npm ci in console/): the tables still show
        chart.classList.add('no-chart');
        chart.textContent = '图表库未安装（在 console/ 目录运行 npm ci），请查看下方数据表。';
        details.open = true;
      }
    }
    for (const spec of TABLE_CARDS) {
      const card = el('section', 'card');
      card.id = `card-${spec.id}`;
      card.setAttribute('aria-labelledby', `title-${spec.id}`);
      const title = el('h2', null, spec.title);
      title.id = `title-${spec.id}`;
      const wrap = el('div', 'table-wrap');
      wrap.id = `table-${spec.id}`;
      const foot = el('div', 'card-foot');
      const csv = el('a', 'csv', '下载 CSV');
      csv.id = `csv-${spec.id}`;
      csv.setAttribute('download', '');
      foot.appendChild(csv);
      card.append(title, el('p', 'note', spec.note), wrap, foot);
      grid.appendChild(card);
    }
    const resize = () => Object.values(state.charts).filter(Boolean).forEach((c) => c.resize());
    if (window.ResizeObserver) new ResizeObserver(resize).observe(grid);
    else window.addEventListener('resize', resize);
    state.built = true;
  }

  function renderTable(wrap, caption, head, body) {
    clear(wrap);
    const table = el('table', 'data');
    table.appendChild(el('caption', null, caption));
    const headRow = el('tr');
    for (const name of head) {
      const th = el('th', null, name);
      th.scope = 'col';
      headRow.appendChild(th);
    }
    table.appendChild(el('thead')).appendChild(headRow);
    const tbody = table.appendChild(el('tbody'));
    if (!body.length) {
      const td = el('td', 'empty', '所选范围内没有数据');
      td.colSpan = head.length;
      tbody.appendChild(el('tr')).appendChild(td);
    }
    for (const row of body) {
      const tr = el('tr');
      row.forEach((cell, i) => {
        const node = el(i === 0 ? 'th' : 'td', null, cell);
        if (i === 0) node.scope = 'row';
        tr.appendChild(node);
      });
      tbody.appendChild(tr);
    }
    wrap.appendChild(table);
  }

  async function loadDashboard() {
    const data = await api(`/api/insight?${query(state.filters)}`);
    applyLabels(data.labels, data.filters);
    showSync(data.sync);
    $('dashboard').hidden = false;
    if (!state.built) buildDashboard();
    const csvQuery = query(data.filters);
    for (const spec of [...CHARTS, ...TABLE_CARDS]) {
      const built = spec.build(data.tables, data.target_hours, data.filters);
      if (state.charts[spec.id]) state.charts[spec.id].setOption(built.option, true);
      renderTable($(`table-${spec.id}`), spec.title, built.head, built.body);
      $(`csv-${spec.id}`).href = `/api/insight/${spec.table}.csv${csvQuery ? `?${csvQuery}` : ''}`;
    }
    $('dashboard').dataset.ready = String(Date.now());
  }

  /* ---------- review inbox ---------- */

  function renderRetrain(status, mayRetrain) {
    const box = $('retrain-status');
    clear(box);
    const button = $('retrain');
    button.hidden = !mayRetrain;
    button.disabled = !status.available || status.running;
    if (!status.available) {
      box.appendChild(el('p', null, '重新训练脚本（scripts/retrain.py）尚未安装：标注会先写入 data/nlu/reviewed.yml，下次训练模型时使用。'));
    }
    const list = el('dl');
    const add = (name, value) => {
      if (value === undefined || value === null || value === '') return;
      list.append(el('dt', null, name), el('dd', null, value));
    };
    add('状态', (RETRAIN_STATES[status.state] || status.state || '空闲') + (status.stale ? '（启动的进程已退出，状态未更新）' : ''));
    add('开始时间', status.started_at ? when(status.started_at) : '');
    add('结束时间', status.finished_at ? when(status.finished_at) : '');
    add('新增人工标注样例', status.reviewed_examples_added);
    add('留出集（训练前）', formatValue(status.heldout_before));
    add('留出集（训练后）', formatValue(status.heldout_after));
    add('说明', status.message);
    if (Array.isArray(status.history) && status.history.length) {
      add('历史', status.history.slice(-5).reverse().map((run) =>
        `${when(run.started_at)} ${RETRAIN_STATES[run.state] || run.state || ''}` +
        (run.reviewed_examples_added !== undefined ? `，新增样例 ${run.reviewed_examples_added}` : '')).join('；'));
    }
    box.appendChild(list);
    clearTimeout(state.retrainTimer);
    if (status.running) state.retrainTimer = setTimeout(refreshRetrain, 5000);
  }

  // the held-out figures scripts/retrain.py writes (a dict of rates), or whatever it wrote
  const FIGURES = [['intent_macro_f1', '意图宏平均 F1'], ['routing_accuracy', '路由准确率'],
                   ['out_of_scope_rejection', '超范围拒答率'], ['bench.routing_accuracy', '基准路由准确率']];

  function formatValue(value) {
    if (value === undefined || value === null) return '';
    const rate = (v) => (typeof v === 'number' && v <= 1 ? pct(v) : String(v));
    if (typeof value !== 'object') return rate(value);
    const pick = (path) => path.split('.').reduce((v, key) => (v && typeof v === 'object' ? v[key] : undefined), value);
    const known = FIGURES.filter(([path]) => typeof pick(path) === 'number').map(([path, name]) => `${name} ${rate(pick(path))}`);
    if (known.length) return known.join('，');
    return Object.entries(value).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `${k}: ${rate(v)}`).join('，');
  }

  async function refreshRetrain() {
    try {
      renderRetrain(await api('/api/insight/retrain'), state.me.role === 'supervisor');
    } catch (error) {
      showError(error.message);
    }
  }

  async function startRetrain() {
    $('retrain').disabled = true;
    try {
      const answer = await api('/api/insight/retrain', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      renderRetrain(answer.status, true);
    } catch (error) {
      showError(error.message);
      refreshRetrain();
    }
  }

  function labelSelect(choices, id) {
    const select = el('select');
    select.id = id;
    select.setAttribute('aria-label', '标注为');
    select.appendChild(new Option('选择标注…', ''));
    const topics = el('optgroup');
    topics.label = '主题';
    const other = el('optgroup');
    other.label = '其他';
    for (const choice of choices) {
      (choice.id === 'out_of_scope' || choice.id === 'new_topic' ? other : topics).appendChild(new Option(choice.title, choice.id));
    }
    select.append(topics, other);
    return select;
  }

  function renderGroup(group, index, choices) {
    const card = el('section', 'card group');
    card.dataset.group = String(index);
    const head = el('div', 'group-head');
    const title = el('h3', null, group.size > 1 ? `${group.size} 条相似问题` : '1 条问题');
    title.id = `group-title-${index}`;
    card.setAttribute('aria-labelledby', title.id);
    head.appendChild(title);
    const reasons = {};
    for (const item of group.items) item.reasons.forEach((r, i) => { reasons[r] = [item.reason_labels[i], (reasons[r] || [0, 0])[1] + 1]; });
    for (const [reason, [label, count]] of Object.entries(reasons)) head.appendChild(el('span', `chip reason-${reason}`, `${label} ${count}`));
    const list = el('ul', 'examples');
    for (const item of group.items) {
      const li = el('li');
      li.dataset.item = String(item.id);
      const label = el('label');
      const box = el('input');
      box.type = 'checkbox';
      box.value = String(item.id);
      box.checked = item.may_label && !item.label;
      box.disabled = !item.may_label;
      const body = el('div');
      body.appendChild(el('div', 'ex-text', item.text));
      const meta = [item.day, item.channel_label, item.reason_labels.join('、')];
      if (item.intent_title) meta.push(`模型判断：${item.intent_title}${item.confidence !== null ? `（${item.confidence.toFixed(2)}）` : ''}`);
      if (item.department_name) meta.push(item.department_name);
      body.appendChild(el('div', 'ex-meta', meta.join(' · ')));
      if (item.label) body.appendChild(el('div', 'ex-label', `已标注：${item.label.title}（${item.label.labelled_by}，${when(item.label.labelled_at)}；${item.label.result_label}）`));
      label.append(box, body);
      li.appendChild(label);
      list.appendChild(li);
    }
    const foot = el('div', 'group-foot');
    const select = labelSelect(choices, `label-${index}`);
    const button = el('button', 'btn btn-primary', '标注所选');
    button.type = 'button';
    const status = el('span', 'group-status');
    status.setAttribute('role', 'status');
    const mayLabel = group.items.some((item) => item.may_label);
    select.disabled = button.disabled = !mayLabel;
    if (!mayLabel) status.textContent = '这些问题不属于您的部门，由主管标注。';
    button.addEventListener('click', () => label(card, select, status));
    foot.append(select, button, status);
    card.append(head, list, foot);
    return card;
  }

  async function label(card, select, status) {
    const items = [...card.querySelectorAll('.examples input:checked')].map((box) => Number(box.value));
    status.className = 'group-status';
    if (!select.value) { status.textContent = '请先选择标注。'; status.classList.add('error'); return; }
    if (!items.length) { status.textContent = '请先勾选要标注的问题。'; status.classList.add('error'); return; }
    status.textContent = '正在保存…';
    try {
      const answer = await api('/api/insight/review/label', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items, label: select.value }),
      });
      const counts = {};
      for (const result of answer.results) counts[result.result_label] = (counts[result.result_label] || 0) + 1;
      const message = `已标注为「${select.selectedOptions[0].textContent}」：` +
        Object.entries(counts).map(([name, count]) => `${name} ${count} 条`).join('，');
      await loadReview();
      const flash = $('review-flash');
      flash.textContent = message;
      flash.hidden = false;
    } catch (error) {
      status.textContent = error.message;
      status.classList.add('error');
    }
  }

  async function loadReview() {
    const data = await api(`/api/insight/review?${query(state.filters, true)}`);
    applyLabels(data.labels, data.filters);
    showSync(data.sync);
    $('review').hidden = false;
    renderRetrain(data.retrain, data.may_retrain);
    $('review-summary').textContent = `所选范围内共 ${data.total} 条待复核问题（已标注 ${data.labelled} 条），` +
      `此处显示 ${data.groups.reduce((n, g) => n + g.size, 0)} 条，分为 ${data.groups.length} 组；` +
      `训练数据 reviewed.yml 现有 ${data.reviewed_examples} 条人工标注样例。`;
    const groups = $('groups');
    clear(groups);
    const flash = el('p', 'summary group-status ok');
    flash.id = 'review-flash';
    flash.setAttribute('role', 'status');
    flash.hidden = true;
    groups.appendChild(flash);
    if (!data.groups.length) groups.appendChild(el('p', 'empty', '所选范围内没有待复核的问题。'));
    data.groups.forEach((group, index) => groups.appendChild(renderGroup(group, index, data.choices)));
    $('review').dataset.ready = String(Date.now());
  }

  /* ---------- start ---------- */

  async function load() {
    try {
      if (REVIEW) await loadReview();
      else await loadDashboard();
    } catch (error) {
      showError(error.message);
    }
  }

  async function start() {
    $('error').addEventListener('click', () => { $('error').hidden = true; });
    $('retrain').addEventListener('click', startRetrain);
    initFilters();
    try {
      state.me = (await api('/api/me')).user;
    } catch (error) {
      showError(error.message);
      return;
    }
    $('user-name').textContent = state.me.name || state.me.username;
    $('user-role').textContent = ROLE_LABELS[state.me.role] || state.me.role;
    $('user-dept').textContent = state.me.department_name || '';
    $('f-department-wrap').hidden = state.me.role !== 'supervisor';
    await load();
  }

  start();
})();
