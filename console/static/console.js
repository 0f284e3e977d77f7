/* 助企帮帮团 · 工作台 — staff console front end.
 * Plain JS, no frameworks. All data goes into the DOM through textContent:
 * never as HTML markup (user messages may contain tags). */
(function () {
  'use strict';

  const POLL_MS = 3000;
  const ERROR_HIDE_MS = 8000;
  const STATUS_LABELS = { waiting: '排队中', claimed: '处理中', resolved: '已办结' };
  const ROLE_LABELS = { specialist: '专员', supervisor: '主管' };
  const OUTCOME_LABELS = { solved: '已解决', handed_back: '已交回智能助手' };
  // a 差评's follow-up, in order; the 反馈 is sent to the business as a reply
  const FOLLOWUP_STEPS = ['verify', 'rectify', 'feedback'];
  const FOLLOWUP_SAVE = { verify: '记录回访核实', rectify: '记录整改', feedback: '发送反馈给企业' };
  const FOLLOWUP_AGAIN = { verify: '再次记录回访核实', rectify: '再次记录整改', feedback: '再次发送反馈' };
  const HTTP_MESSAGES = {
    400: '请求内容有误',
    403: '无权执行此操作',
    404: '案件不存在或无权查看',
    409: '案件状态已变化，请刷新后再试',
    502: '暂时无法连接智能助手，请稍后再试',
  };

  const state = {
    me: null,
    departments: [],
    cases: [],
    fetchedAt: 0,      // Date.now() when the queue was last fetched
    queueKey: '',      // what the queue was last rendered from
    selectedId: null,
    keys: {},          // last rendered data per case part
    scrollToEnd: false,
    drafts: {},        // unsent reply/note/follow-up text per case id
    busy: {},          // request in flight per poller
    again: {},         // poller asked again while busy
    page: 1, pages: 1, total: 0,  // the queue's page (100 cases each) and how many in all
    redirecting: false,
  };

  const $ = (id) => document.getElementById(id);

  // open cases of one client (a flood) from which a case is marked 「同一来源 N 件」
  const SAME_CLIENT_MIN = 2;
  const sameClientOpen = (c) => (typeof c.same_client_open === 'number' ? c.same_client_open : 0);

  /* ---------- small DOM helpers ---------- */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function statusChip(status) {
    const chip = el('span', 'chip', STATUS_LABELS[status] || status);
    chip.dataset.status = status;
    return chip;
  }

  /* ---------- time formatting ---------- */

  const pad = (n) => String(n).padStart(2, '0');

  function fmtTime(epoch) {
    if (!epoch) return '—';
    const d = new Date(epoch * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  // HH:MM today, MM-DD HH:MM otherwise.
  function fmtShort(epoch) {
    if (!epoch) return '';
    const d = new Date(epoch * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (d.toDateString() === new Date().toDateString()) return hm;
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
  }

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const days = Math.floor(s / 86400);
    const hours = Math.floor((s % 86400) / 3600);
    const mins = Math.floor((s % 3600) / 60);
    if (days > 0) return `${days} 天 ${hours} 小时`;
    if (hours > 0) return `${hours} 小时 ${mins} 分`;
    if (mins > 0) return `${mins} 分钟`;
    return '不到 1 分钟';
  }

  /* ---------- error banner ---------- */

  let errorTimer = null;

  function showError(message) {
    if (state.redirecting) return;
    const box = $('error');
    box.textContent = message || '操作失败，请稍后再试';
    box.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, ERROR_HIDE_MS);
  }

  function hideError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  const report = (err) => showError(err && err.message);

  /* ---------- API ---------- */

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (method === 'POST') {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body || {});
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError('无法连接服务器，请稍后再试', 0);
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401) {
      state.redirecting = true;
      location.href = '/login';
      throw new ApiError('登录已过期，请重新登录', 401);
    }
    if (!res.ok) {
      const msg = (data && data.error) || HTTP_MESSAGES[res.status] || `请求失败（HTTP ${res.status}）`;
      throw new ApiError(msg, res.status);
    }
    return data || {};
  }

  // Runs fn with btn disabled; errors go to the banner.
  async function withButton(btn, fn) {
    if (btn.disabled) return;
    btn.disabled = true;
    try {
      await fn();
    } catch (err) {
      report(err);
    } finally {
      btn.disabled = false;
    }
  }

  // Runs a poller at most once at a time; a call while busy re-runs it once after.
  async function serial(name, fn) {
    if (state.busy[name]) { state.again[name] = true; return; }
    state.busy[name] = true;
    try {
      await fn();
    } finally {
      state.busy[name] = false;
      if (state.again[name]) {
        state.again[name] = false;
        serial(name, fn);
      }
    }
  }

  /* ---------- profile & departments ---------- */

  const isSupervisor = () => !!(state.me && state.me.role === 'supervisor');

  async function loadProfile() {
    try {
      const data = await api('GET', '/api/me');
      state.me = data.user || null;
      renderUser();
    } catch (err) { report(err); }
  }

  async function loadDepartments() {
    try {
      const data = await api('GET', '/api/departments');
      state.departments = data.departments || [];
      renderDepartmentFilter();
    } catch (err) { report(err); }
  }

  function renderUser() {
    const me = state.me || {};
    $('user-name').textContent = me.name || me.username || '';
    $('user-role').textContent = ROLE_LABELS[me.role] || '';
    $('user-dept').textContent = me.department_name || '';
    $('filter-department-wrap').hidden = !isSupervisor();
  }

  function renderDepartmentFilter() {
    const select = $('filter-department');
    const current = select.value;
    clear(select);
    select.appendChild(new Option('全部部门', ''));
    state.departments.forEach((d) => select.appendChild(new Option(d.name, d.id)));
    select.value = current;
    if (select.value !== current) select.value = '';
  }

  /* ---------- queue ---------- */

  function queueUrl() {
    const params = new URLSearchParams({ status: $('filter-status').value || 'open', page: String(state.page || 1) });
    const dept = $('filter-department').value;
    if (isSupervisor() && dept) params.set('department', dept);
    return '/api/cases?' + params.toString();
  }

  function refreshQueue() {
    return serial('queue', async () => {
      const url = queueUrl();
      try {
        const data = await api('GET', url);
        if (url !== queueUrl()) { state.again.queue = true; return; } // filters changed meanwhile
        state.cases = data.cases || [];
        state.total = typeof data.total === 'number' ? data.total : state.cases.length;
        state.page = data.page || 1;
        state.pages = data.pages || 1;
        state.fetchedAt = Date.now();
        renderQueue();
        renderPager();
      } catch (err) { report(err); }
    });
  }

  function renderPager() {
    const pager = $('queue-pager');
    pager.hidden = (state.pages || 1) <= 1;
    $('queue-page').textContent = `第 ${state.page} / ${state.pages} 页`;
    $('queue-prev').disabled = state.page <= 1;
    $('queue-next').disabled = state.page >= state.pages;
  }

  function turnPage(step) {
    state.page = Math.min(Math.max(1, (state.page || 1) + step), state.pages || 1);
    refreshQueue();
  }

  function renderQueue() {
    const queue = $('queue');
    $('queue-count').textContent = String(typeof state.total === 'number' ? state.total : state.cases.length);
    // waiting_seconds changes on every poll; the live timer handles it.
    const key = JSON.stringify(state.cases.map((c) => Object.assign({}, c, { waiting_seconds: 0 })));
    if (key !== state.queueKey) {
      state.queueKey = key;
      const active = document.activeElement;
      const focusedId = queue.contains(active) && active.dataset ? active.dataset.caseId : null;
      clear(queue);
      if (!state.cases.length) queue.appendChild(el('div', 'queue-empty', '暂无案件'));
      state.cases.forEach((c) => {
        const row = buildRow(c);
        queue.appendChild(row);
        if (focusedId === row.dataset.caseId) row.focus();
      });
    }
    markSelected();
    updateWaitTimes();
  }

  function buildRow(c) {
    const row = el('div', 'case-row');
    row.dataset.caseId = String(c.id);
    row.dataset.status = c.status;
    row.tabIndex = 0;
    row.setAttribute('role', 'button');

    const top = el('div', 'row-top');
    top.append(el('span', 'case-id', '#' + c.id), statusChip(c.status),
      el('span', 'row-dept', c.department_name || ''), el('span', 'wait'));

    const topic = el('div', 'row-topic');
    topic.append(el('span', 'reason', c.reason_label || c.reason || ''));
    if (c.topic_title) topic.append(el('span', 'topic', c.topic_title));

    const preview = [c.company, c.problem].filter((s) => s && s !== '未提供').join(' · ');
    const line = el('div', 'row-preview', preview || '未提供企业与问题信息');
    line.title = preview;

    // the flood badge sits with the channel (where the cases came from), not in the top line,
    // where it left the department name 「区..」
    const source = el('span', 'row-source', c.channel_label || c.channel || '');
    if (sameClientOpen(c) >= SAME_CLIENT_MIN) {
      const badge = el('span', 'same-client', `同一来源 ${sameClientOpen(c)} 件`);
      badge.title = '同一来源（同一地址或微信用户）目前有多件未结案件，可能是刷屏';
      source.append(badge);
    }
    const foot = el('div', 'row-foot');
    foot.append(source);
    if (c.assignee_name || c.assignee) foot.append(el('span', 'assignee', '处理人 ' + (c.assignee_name || c.assignee)));

    row.append(top, topic, line, foot);
    return row;
  }

  function waitText(c, elapsed) {
    if (c.status === 'resolved') return c.resolved_at ? '办结于 ' + fmtShort(c.resolved_at) : '已办结';
    return '等待 ' + fmtDuration((c.waiting_seconds || 0) + elapsed);
  }

  // Live waiting times: waiting_seconds + seconds since the fetch.
  function updateWaitTimes() {
    const elapsed = (Date.now() - state.fetchedAt) / 1000;
    const byId = new Map(state.cases.map((c) => [String(c.id), c]));
    $('queue').querySelectorAll('.case-row').forEach((row) => {
      const c = byId.get(row.dataset.caseId);
      const span = row.querySelector('.wait');
      if (!c || !span) return;
      span.textContent = waitText(c, elapsed);
      span.classList.toggle('overdue', c.status === 'waiting' && (c.waiting_seconds || 0) + elapsed >= 1800);
    });
  }

  function markSelected() {
    const id = state.selectedId === null ? null : String(state.selectedId);
    $('queue').querySelectorAll('.case-row').forEach((row) => {
      row.classList.toggle('selected', row.dataset.caseId === id);
    });
  }

  /* ---------- selection (kept in location.hash) ---------- */

  function goToCase(id) {
    if (location.hash === '#case-' + id) openFromHash();
    else location.hash = 'case-' + id;
  }

  function openFromHash() {
    const m = /^#case-(\d+)$/.exec(location.hash);
    const id = m ? Number(m[1]) : null;
    if (id !== state.selectedId) selectCase(id);
  }

  function selectCase(id) {
    saveDrafts();
    state.selectedId = id;
    state.keys = {};
    state.scrollToEnd = true;
    restoreDrafts();
    $('reply-status').hidden = true;
    $('followup-status').hidden = true;
    $('bulk-status').hidden = true;
    $('case').hidden = true;
    $('case-empty').hidden = false;
    $('case-empty').textContent = id === null ? '请选择左侧的案件' : `正在加载案件 #${id}…`;
    markSelected();
    if (id !== null) refreshCase();
  }

  function deselect(message) {
    history.replaceState(null, '', location.pathname + location.search);
    selectCase(null);
    $('case-empty').textContent = message;
  }

  function saveDrafts() {
    if (state.selectedId === null) return;
    const drafts = { reply: $('reply-text').value, note: $('note-text').value };
    FOLLOWUP_STEPS.forEach((step) => { drafts[step] = $(`followup-${step}-text`).value; });
    state.drafts[state.selectedId] = drafts;
  }

  function restoreDrafts() {
    const d = state.drafts[state.selectedId] || {};
    $('reply-text').value = d.reply || '';
    $('note-text').value = d.note || '';
    FOLLOWUP_STEPS.forEach((step) => { $(`followup-${step}-text`).value = d[step] || ''; });
  }

  /* ---------- case detail ---------- */

  function refreshCase() {
    return serial('case', async () => {
      const id = state.selectedId;
      if (id === null) return;
      try {
        const data = await api('GET', `/api/cases/${id}`);
        if (id === state.selectedId) renderCase(data);
      } catch (err) {
        if (id !== state.selectedId) return;
        report(err);
        if (err.status === 404 || err.status === 403) deselect(`无法打开案件 #${id}：${err.message}`);
      }
    });
  }

  // Re-renders one part only when its data changed, so inputs keep their state.
  function part(name, value, render) {
    const key = JSON.stringify(value === undefined ? null : value);
    if (state.keys[name] === key) return;
    state.keys[name] = key;
    render();
  }

  function renderCase(data) {
    const c = data.case;
    const perms = data.permissions || {};
    $('case-empty').hidden = true;
    $('case').hidden = false;
    part('head', c, () => renderHead(c));
    part('details', [c.contact, c.company, c.problem], () => renderDetails(c));
    part('reach', data.reach, () => renderReach(data.reach));
    part('actions', [perms, c.department, c.status, c.assignee_name, c.same_client_open, state.departments],
      () => renderActions(c, perms));
    part('followup', [data.followup, perms.followup, data.reach], () => renderFollowup(data.followup, perms, data.reach));
    part('transcript', data.conversation, () => renderTranscript(data.conversation));
    part('notes', data.notes, () => renderNotes(data.notes || []));
    part('events', data.events, () => renderEvents(data.events || []));
  }

  function renderHead(c) {
    $('case-title').textContent = '案件 #' + c.id;
    const status = $('case-status');
    status.textContent = STATUS_LABELS[c.status] || c.status;
    status.dataset.status = c.status;

    const items = [
      ['部门', c.department_name],
      ['原因', c.reason_label || c.reason],
      ['主题', c.topic_title || '—'],
      ['渠道', c.channel_label || c.channel],
      ['处理人', c.assignee_name || c.assignee || '未认领'],
      ['创建时间', fmtTime(c.created_at)],
    ];
    if (c.claimed_at && c.status === 'claimed') items.push(['认领时间', fmtTime(c.claimed_at)]);
    if (c.resolved_at) items.push(['办结时间', fmtTime(c.resolved_at)]);
    if (c.outcome) items.push(['结果', OUTCOME_LABELS[c.outcome] || c.outcome]);
    if (c.rating) items.push(['用户评价', c.rating]);
    if (sameClientOpen(c) >= SAME_CLIENT_MIN) items.push(['同一来源', `${sameClientOpen(c)} 件未结案件`]);

    const meta = $('case-meta');
    clear(meta);
    items.forEach(([label, value]) => {
      const item = el('span', 'meta-item');
      item.append(el('span', 'meta-label', label), el('span', 'meta-value', value || '—'));
      meta.appendChild(item);
    });
  }

  function renderDetails(c) {
    const dl = $('case-details');
    clear(dl);
    [['联系方式', c.contact], ['企业名称', c.company], ['问题描述', c.problem]].forEach(([label, value]) => {
      dl.append(el('dt', '', label), el('dd', value ? '' : 'muted', value || '未提供'));
    });
  }

  function renderReach(reach) {
    const box = $('reach');
    box.hidden = !reach;
    if (!reach) return;
    const warn = !reach.reachable || !reach.can_push;
    box.className = 'reach ' + (warn ? 'warn' : 'ok');
    clear(box);
    if (reach.channel_label) box.appendChild(el('span', 'reach-channel', reach.channel_label));
    box.appendChild(el('span', 'reach-text', reach.message || ''));
  }

  function renderActions(c, perms) {
    ['claim', 'release', 'resolve', 'handback'].forEach((name) => { $(name).hidden = !perms[name]; });
    $('reassign-group').hidden = !perms.reassign;
    if (perms.reassign) {
      const select = $('reassign-department');
      const picked = select.value;
      clear(select);
      select.appendChild(new Option('转派到…', ''));
      state.departments
        .filter((d) => String(d.id) !== String(c.department))
        .forEach((d) => select.appendChild(new Option(d.name, d.id)));
      select.value = picked;
      if (select.value !== picked) select.value = '';
    }
    const bulk = !!perms.close_same_client && sameClientOpen(c) >= SAME_CLIENT_MIN;
    const closeAll = $('close-same-client');
    closeAll.hidden = !bulk;
    closeAll.dataset.count = String(sameClientOpen(c));
    const any = ['claim', 'release', 'resolve', 'handback'].some((n) => perms[n]) || perms.reassign || bulk;
    $('actions').hidden = !any;

    $('reply-area').hidden = !perms.reply;
    $('note-area').hidden = !perms.note;
    const hint = $('reply-hint');
    let text = '';
    if (!perms.reply && c.status === 'waiting' && perms.claim) text = '认领后即可回复用户。';
    else if (!perms.reply && c.status === 'claimed') text = `该案件由 ${c.assignee_name || c.assignee || '其他工作人员'} 处理中。`;
    else if (c.status === 'resolved') text = '案件已办结。';
    hint.textContent = text;
    hint.hidden = !text;
  }

  /* ---------- 差评 follow-up ---------- */

  // The three steps with their dates (or 未完成); the claimer records each with a note.
  function renderFollowup(steps, perms, reach) {
    $('followup').hidden = !steps;
    if (!steps) return;
    steps.forEach((s) => {
      $(`followup-${s.step}`).dataset.done = String(!!s.done);
      const again = s.times > 1 ? `（已记录 ${s.times} 次，以最近一次为准）` : '';
      $(`followup-${s.step}-status`).textContent = s.done ? `已完成 ${fmtTime(s.at)}${again}` : '未完成';
      const note = $(`followup-${s.step}-note`);
      note.hidden = !s.done;
      note.textContent = s.done ? `${s.actor_name || s.actor || ''}：${s.note || ''}` : '';
      $(`followup-${s.step}-form`).hidden = !perms.followup;
      $(`followup-${s.step}-save`).textContent = (s.done ? FOLLOWUP_AGAIN : FOLLOWUP_SAVE)[s.step];
    });
    const warn = $('followup-feedback-reach');
    const blocked = reach && (!reach.can_push || !reach.reachable);
    warn.hidden = !blocked;
    warn.textContent = blocked ? `目前反馈无法送达企业：${reach.message}` : '';
  }

  const setFollowupStatus = (kind, message) => showStatus('followup-status', kind, message);

  function recordFollowup(step) {
    const id = state.selectedId;
    const box = $(`followup-${step}-text`);
    const raw = box.value;
    const text = raw.trim();
    if (id === null) return;
    if (!text) { setFollowupStatus('warn', '请先填写内容'); box.focus(); return; }
    withButton($(`followup-${step}-save`), async () => {
      setFollowupStatus('pending', step === 'feedback' ? '正在发送反馈…' : '正在保存…');
      try {
        const byPhone = step === 'feedback' && $('followup-feedback-phone').checked;
        const data = await api('POST', `/api/cases/${id}/followup`, { step, text, via: byPhone ? 'phone' : 'channel' });
        if (id !== state.selectedId) {
          if (data.recorded && state.drafts[id]) state.drafts[id][step] = '';
          return;
        }
        if (data.recorded) {
          if (box.value === raw) box.value = '';
          if (step === 'feedback') state.scrollToEnd = true;  // the reply just sent
          if (byPhone) $('followup-feedback-phone').checked = false;
          setFollowupStatus('ok', byPhone ? '电话答复已记录。'
            : step === 'feedback' ? `反馈已送达企业并记录：${data.message || ''}` : '已记录。');
        } else {
          setFollowupStatus('warn', `反馈未记录：${data.message || '未能送达企业'}`);
        }
      } catch (err) {
        if (id === state.selectedId) setFollowupStatus('error', err.message);
        throw err;
      } finally {
        refreshAll();
      }
    });
  }

  /* ---------- conversation ---------- */

  function renderTranscript(conv) {
    const box = $('transcript');
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    clear(box);
    if (!conv) {
      box.appendChild(el('div', 'transcript-warning', '无法加载对话记录'));
    } else {
      if (!conv.available) box.appendChild(el('div', 'transcript-warning', conv.error || '对话记录暂不可用'));
      (conv.messages || []).forEach((m) => box.appendChild(buildMessage(m)));
      if (conv.available && !(conv.messages || []).length) box.appendChild(el('div', 'transcript-empty', '暂无对话消息'));
    }
    if (nearBottom || state.scrollToEnd) box.scrollTop = box.scrollHeight;
    state.scrollToEnd = false;
  }

  function buildMessage(m) {
    const who = ['user', 'bot', 'staff'].includes(m.who) ? m.who : 'bot';
    const wrap = el('div', 'msg ' + who);
    const author = who === 'user' ? '用户' : who === 'staff' ? `${m.staff_name || ''}（工作人员）` : '智能助手';
    const meta = el('div', 'msg-meta');
    meta.appendChild(el('span', 'msg-author', author));
    if (m.at) meta.appendChild(el('span', 'msg-time', fmtShort(m.at)));
    wrap.appendChild(meta);
    if (m.text) wrap.appendChild(el('div', 'bubble', m.text));
    if (m.card) wrap.appendChild(buildCard(m.card));
    if (m.buttons && m.buttons.length) {
      const row = el('div', 'msg-buttons');
      m.buttons.forEach((b) => row.appendChild(el('span', 'msg-button', b)));
      wrap.appendChild(row);
    }
    return wrap;
  }

  function buildCard(card) {
    const box = el('div', 'msg-card');
    if (card.title) box.appendChild(el('div', 'card-title', card.title));
    if (card.department) box.appendChild(el('div', 'card-dept', card.department));
    box.appendChild(buildList(card.items));
    if (card.channels && card.channels.length) {
      box.appendChild(el('div', 'card-sub', '办理渠道'));
      box.appendChild(buildList(card.channels));
    }
    return box;
  }

  function buildList(items) {
    const ul = el('ul', 'card-list');
    (items || []).forEach((text) => ul.appendChild(el('li', '', text)));
    return ul;
  }

  /* ---------- notes & events ---------- */

  function renderNotes(notes) {
    const ul = $('notes');
    clear(ul);
    if (!notes.length) ul.appendChild(el('li', 'empty', '暂无备注'));
    notes.forEach((n) => {
      const li = el('li', 'note');
      li.append(el('div', 'note-meta', `${n.actor_name || n.actor || ''} · ${fmtTime(n.at)}`), el('div', 'note-text', n.text));
      ul.appendChild(li);
    });
  }

  function renderEvents(events) {
    const ol = $('events');
    clear(ol);
    if (!events.length) ol.appendChild(el('li', 'empty', '暂无记录'));
    events.forEach((e) => {
      const li = el('li', 'event');
      li.append(el('span', 'event-time', fmtTime(e.at)), document.createTextNode(' '),
        el('span', 'event-actor', e.actor_name || e.actor || '系统'), document.createTextNode(' '),
        el('span', 'event-label', e.label || e.action || ''));
      if (e.detail) li.append(document.createTextNode(' '), el('span', 'event-detail', e.detail));
      ol.appendChild(li);
    });
  }

  /* ---------- actions ---------- */

  function refreshAll() {
    refreshQueue();
    refreshCase();
  }

  function caseAction(name) {
    const id = state.selectedId;
    if (id === null) return;
    withButton($(name), async () => {
      try {
        await api('POST', `/api/cases/${id}/${name}`, {});
      } finally {
        refreshAll(); // also after 409: show the current state
      }
    });
  }

  function reassign() {
    const id = state.selectedId;
    const department = $('reassign-department').value;
    if (id === null) return;
    if (!department) { showError('请选择要转派的部门'); return; }
    withButton($('reassign'), async () => {
      try {
        await api('POST', `/api/cases/${id}/reassign`, { department });
      } finally {
        refreshAll();
      }
    });
  }

  // A supervisor hands back every open case of this case's client (a flood) at once.
  function closeSameClient() {
    const id = state.selectedId;
    if (id === null) return;
    const count = Number($('close-same-client').dataset.count) || 0;
    if (!window.confirm(`确定关闭同一来源的全部 ${count} 件未结案件吗？这些对话将交回智能助手。`)) return;
    withButton($('close-same-client'), async () => {
      showStatus('bulk-status', 'pending', '正在批量关闭…');
      try {
        const data = await api('POST', `/api/cases/${id}/close-same-client`, {});
        if (id !== state.selectedId) return;
        showStatus('bulk-status', (data.not_closed || []).length ? 'warn' : 'ok',
          data.message || `已关闭 ${data.closed || 0} 件案件。`);
      } catch (err) {
        if (id === state.selectedId) showStatus('bulk-status', 'error', err.message);
        throw err;
      } finally {
        refreshAll();
      }
    });
  }

  const statusTimers = {};

  // One status line under an action (reply, follow-up, bulk close): an ok hides itself after
  // 6 s, a warning or an error is scrolled into view.
  function showStatus(boxId, kind, message) {
    const box = $(boxId);
    box.className = 'reply-status ' + kind;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(statusTimers[boxId]);
    if (kind === 'ok') statusTimers[boxId] = setTimeout(() => { box.hidden = true; }, 6000);
    if (kind === 'warn' || kind === 'error') box.scrollIntoView({ block: 'nearest' });
  }

  const setReplyStatus = (kind, message) => showStatus('reply-status', kind, message);

  function sendReply() {
    const id = state.selectedId;
    const box = $('reply-text');
    const raw = box.value;
    const text = raw.trim();
    if (id === null) return;
    if (!text) { setReplyStatus('warn', '请输入回复内容'); box.focus(); return; }
    withButton($('send-reply'), async () => {
      setReplyStatus('pending', '正在发送…');
      try {
        const data = await api('POST', `/api/cases/${id}/reply`, { text });
        if (id !== state.selectedId) {
          if (data.delivered && state.drafts[id]) state.drafts[id].reply = '';
          return;
        }
        if (data.delivered) {
          if (box.value === raw) box.value = '';
          state.scrollToEnd = true;  // show the reply just sent
          setReplyStatus('ok', '已发送' + (data.message ? '：' + data.message : ''));
        } else {
          setReplyStatus('warn', data.message || '消息未能送达用户，请通过其他方式联系。');
        }
      } catch (err) {
        if (id === state.selectedId) setReplyStatus('error', err.message);
        throw err;
      } finally {
        refreshAll();
      }
    });
  }

  function addNote() {
    const id = state.selectedId;
    const box = $('note-text');
    const raw = box.value;
    const text = raw.trim();
    if (id === null) return;
    if (!text) { showError('请输入备注内容'); box.focus(); return; }
    withButton($('add-note'), async () => {
      try {
        await api('POST', `/api/cases/${id}/note`, { text });
        if (id === state.selectedId && box.value === raw) box.value = '';
      } finally {
        refreshCase();
      }
    });
  }

  async function logout() {
    $('logout').disabled = true;
    try { await api('POST', '/api/logout', {}); } catch (e) { /* leave anyway */ }
    state.redirecting = true;
    location.href = '/login';
  }

  /* ---------- wiring ---------- */

  function bindEvents() {
    $('error').addEventListener('click', hideError);
    $('logout').addEventListener('click', logout);
    $('filter-status').addEventListener('change', () => { state.page = 1; refreshQueue(); });
    $('filter-department').addEventListener('change', () => { state.page = 1; refreshQueue(); });
    $('queue-prev').addEventListener('click', () => turnPage(-1));
    $('queue-next').addEventListener('click', () => turnPage(1));

    const queue = $('queue');
    queue.addEventListener('click', (e) => {
      const row = e.target.closest('.case-row');
      if (row) goToCase(row.dataset.caseId);
    });
    queue.addEventListener('keydown', (e) => {
      const row = e.target.closest('.case-row');
      if (row && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); goToCase(row.dataset.caseId); }
    });

    ['claim', 'release', 'resolve', 'handback'].forEach((name) => {
      $(name).addEventListener('click', () => caseAction(name));
    });
    $('reassign').addEventListener('click', reassign);
    $('close-same-client').addEventListener('click', closeSameClient);
    $('send-reply').addEventListener('click', sendReply);
    $('add-note').addEventListener('click', addNote);
    FOLLOWUP_STEPS.forEach((step) => {
      $(`followup-${step}-save`).addEventListener('click', () => recordFollowup(step));
    });

    const ctrlEnter = (fn) => (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); fn(); }
    };
    $('reply-text').addEventListener('keydown', ctrlEnter(sendReply));
    $('note-text').addEventListener('keydown', ctrlEnter(addNote));

    window.addEventListener('hashchange', openFromHash);
  }

  function tick() {
    if (state.redirecting) return;
    if (!state.me) loadProfile();
    refreshQueue();
    refreshCase();
  }

  async function init() {
    bindEvents();
    await Promise.all([loadProfile(), loadDepartments()]);
    if (state.redirecting) return;
    openFromHash();
    refreshQueue();
    setInterval(tick, POLL_MS);
    setInterval(updateWaitTimes, 5000);
  }

  init();
})();
