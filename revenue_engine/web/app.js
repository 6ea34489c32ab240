// A build-free SPA for the revenue-engine GraphQL API: a development demo to copy from.
// It signs in with the development headers (x-organization-id, x-customer-email); a real SPA
// sends `Authorization: Bearer <JWT>` instead (see gql() below).
const $ = (sel) => document.querySelector(sel);
const IDENTITY_KEY = "re-demo-identity";
const LIVE = ["active", "trialing", "past_due"];

// Text from the API goes into HTML through esc(): admins write plan names, not code.
const esc = (text) =>
  String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const money = (amount, currency) =>
  new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount / 100);
// DateTime values are UTC; one without an offset is read as UTC, not as local time.
const parseDate = (iso) => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
const longDate = (iso) =>
  parseDate(iso).toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" });
const when = (iso) => (iso ? `<time datetime="${esc(iso)}">${esc(longDate(iso))}</time>` : "—");
const count = (n) => Number(n).toLocaleString();
const plural = (n, word) => `${count(n)} ${word}${Number(n) === 1 ? "" : "s"}`;
// recordUsage's idempotency key: a fresh one per click (randomUUID needs a secure context,
// which http://127.0.0.1 is; a plain-http LAN address is not, hence getRandomValues).
const eventId = () =>
  crypto.randomUUID?.() ??
  [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");

// ------------------------------------------------------------------ talking to the API
/** An error to show: the API's message, with its code (UserError.code or extensions.code). */
class ApiError extends Error {
  constructor(message, code, details = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

function identity() {
  try {
    return JSON.parse(localStorage.getItem(IDENTITY_KEY) || "null");
  } catch {
    return null;
  }
}

async function gql(query, variables = {}) {
  const who = identity();
  const headers = { "content-type": "application/json" };
  if (who) {
    headers["x-organization-id"] = who.org;
    if (who.email) headers["x-customer-email"] = who.email;
  }
  let response;
  try {
    response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError("The API cannot be reached. Is the engine running?", "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The API answered HTTP ${response.status} without a GraphQL body.`, `HTTP_${response.status}`);
  }
  if (body.errors && body.errors.length) {
    const error = body.errors[0];
    throw new ApiError(error.message, error.extensions?.code || "ERROR");
  }
  return body.data;
}

// Every mutation answers a union: the success payload, or a typed error (UserError). Each
// mutation's union lists only the errors it can answer (schema.graphql), and GraphQL refuses a
// fragment on a type outside the union; inside `... on UserError` any error type may be named,
// so one fragment serves every mutation.
const FIELDS = "... on ValidationError { fields { field message } }";
const RETRY = "... on RetryableError { retryAfterSeconds }";
const PROMO = "... on PromotionCodeError { promotionCode reason }";
const ERRORS = `... on UserError { code message ${FIELDS} ${RETRY} ${PROMO} }`;

/** The success payload of a union result, or throw the typed error with its own message. */
function unwrap(result, success) {
  if (result.__typename === success) return result;
  let message = result.message || `Unexpected answer: ${result.__typename}`;
  if (result.fields && result.fields.length) {
    message += ` (${result.fields.map((f) => `${f.field}: ${f.message}`).join("; ")})`;
  }
  if (result.reason) message += ` (${result.reason.toLowerCase().replace(/_/g, " ")})`;
  if (result.retryAfterSeconds) message += ` Try again in ${Math.ceil(result.retryAfterSeconds)} s.`;
  throw new ApiError(message, result.code || result.__typename, result);
}

// ------------------------------------------------------------------ page state
function say(text, kind = "info", code = "", reason = "") {
  const box = $("#message");
  box.textContent = text;
  box.className = text ? kind : "";
  box.dataset.code = code;
  box.dataset.reason = reason;
}

const fail = (error) => say(error.message, "error", error.code || "ERROR", error.details?.reason || "");

// While a request runs, <main aria-busy="true"> and its buttons take no clicks (no double submits).
let pending = 0;
async function busy(work) {
  pending += 1;
  $("#main").setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    fail(error);
    return undefined;
  } finally {
    pending -= 1;
    if (pending === 0) $("#main").setAttribute("aria-busy", "false");
  }
}

const STATUS = `hasSubscription status isActive planUid billingInterval overages seats currentPeriodEnd
  cancelAtPeriodEnd cancelAt canceledAt endedAt trialEnd entitlements { key enabled limit unlimited used remaining }
  discounts { promotionCode couponId name percentOff amountOff currency duration durationInMonths end }`;
const FEATURE_USAGE = `feature used included remaining overageAvailable overageEnabled packageSize
  overageUnits overagePackages overageAmount currency removalPending`;

let plans = [];
let current = null;
let usage = null;

const interval = () => document.querySelector("input[name=interval]:checked").value;
const planName = (uid) => plans.find((p) => p.uid === uid)?.name || uid || "—";
const isLive = (s) => Boolean(s && s.hasSubscription && LIVE.includes(s.status));
const meteredAddon = (planUid, feature) =>
  plans.find((p) => p.uid === planUid)?.overages.find((o) => o.kind === "METERED" && o.feature === feature);

/** What an add-on does, for its checkbox: a pack adds to a limit, a metered add-on bills overage. */
function addOnText(addon, price) {
  const cost = money(price.amount, price.currency);
  if (addon.kind === "PACK") {
    // The unit names the pack ("100 GB"); a bare word ("unit") says less than the size does.
    const size = /\d/.test(addon.unit) ? addon.unit : count(addon.packSize ?? 1);
    return `+${size} ${addon.feature}, ${cost} / ${interval() === "YEAR" ? "year" : "month"}`;
  }
  if (addon.kind === "METERED") {
    return `Overage: ${cost} per ${count(addon.packageSize ?? 1)} ${addon.feature} beyond the included, billed at period end`;
  }
  return `${addon.unit}, +${cost}`; // stored before add-ons had a kind: it changes nothing
}

// ------------------------------------------------------------------ rendering
const per = () => (interval() === "YEAR" ? "year" : "month");
const seatRange = (plan) =>
  plan.maxSeats ? `${count(plan.minSeats)} to ${count(plan.maxSeats)} seats` : `from ${count(plan.minSeats)} seats`;
/** The add-on keys chosen on a plan card; a disabled one (a metered add-on of the current plan)
 * is kept as the subscription holds it. */
const checkedAddOns = (card) =>
  [...card.querySelectorAll("input[type=checkbox]")]
    .filter((i) => (i.disabled ? i.dataset.held === "true" : i.checked))
    .map((i) => i.value)
    .sort();
const overageOn = (feature) => Boolean(usage?.features.find((f) => f.feature === feature)?.overageEnabled);
const sameKeys = (a, b) => a.length === b.length && a.every((key, i) => key === b[i]);

function renderPlans() {
  const box = $("#plans");
  box.innerHTML = "";
  const live = isLive(current);
  $("#promotion-apply").hidden = !live;
  for (const plan of plans) {
    const price = plan.prices.find((p) => p.interval === interval());
    if (!price) continue;
    const card = document.createElement("div");
    card.className = "plan";
    card.dataset.plan = plan.uid;
    card.dataset.testid = `plan-${plan.uid}`;
    const isCurrent = live && current.planUid === plan.uid && current.billingInterval === interval();
    const held = isCurrent ? [...current.overages].sort() : [];
    // On the current plan the checkboxes say what it holds, and changing them is a change of
    // add-ons. A metered add-on there is the overage switch of its meter (setOverage), which
    // knows what this period still has to bill: its checkbox only shows whether overage is on.
    const addOns = plan.overages
      .map((o) => [o, o.prices.find((p) => p.interval === interval())])
      .filter(([, p]) => p)
      .map(([o, p]) => {
        const meteredHere = isCurrent && o.kind === "METERED";
        const title = meteredHere
          ? "Switch this overage on or off under Usage."
          : o.kind === "METERED" ? "Chosen: overage is on from the start; you can switch it later." : "";
        return `<label data-testid="addon-${esc(plan.uid)}-${esc(o.key)}" data-kind="${esc(o.kind)}"
          ${title ? `title="${esc(title)}"` : ""}>
          <input type="checkbox" value="${esc(o.key)}" data-held="${held.includes(o.key)}"
            ${(meteredHere ? overageOn(o.feature) : held.includes(o.key)) ? "checked" : ""}
            ${meteredHere ? "disabled" : ""}> ${esc(o.name)}
          <small>${esc(addOnText(o, p))}${meteredHere ? " · switch it under Usage" : ""}</small></label>`;
      })
      .join("");
    // Seats are bought with the plan; those of the current plan change under "Your subscription".
    const seats = plan.perSeat && !isCurrent
      ? `<label class="seats" data-testid="seats-${esc(plan.uid)}">Seats
          <input type="number" data-testid="seats-input-${esc(plan.uid)}" min="${esc(plan.minSeats)}"
            ${plan.maxSeats ? `max="${esc(plan.maxSeats)}"` : ""} step="1"
            value="${esc(live && current.seats && current.seats >= plan.minSeats ? current.seats : plan.minSeats)}">
          <small>${esc(seatRange(plan))}</small></label>`
      : "";
    const label = isCurrent ? "Current plan" : live ? "Switch to this plan" : "Subscribe";
    card.innerHTML = `
      <h3>${esc(plan.name)}</h3>
      <div class="price">${money(price.amount, price.currency)} <small>/ ${plan.perSeat ? "seat / " : ""}${per()}</small></div>
      <p>${esc(plan.description)}</p>
      <ul>${plan.features.map((f) => `<li>${esc(f)}</li>`).join("")}</ul>
      ${addOns ? `<div class="addons">${addOns}</div>` : ""}
      ${seats}
      <button class="primary" data-testid="choose-${esc(plan.uid)}" ${isCurrent ? "disabled" : ""}>${label}</button>`;
    const button = card.querySelector("button");
    if (isCurrent) {
      // The current plan's button wakes up when its add-ons differ from those held.
      card.addEventListener("change", () => {
        const changed = !sameKeys(checkedAddOns(card), held);
        button.disabled = !changed;
        button.textContent = changed ? "Update add-ons" : "Current plan";
      });
    }
    button.addEventListener("click", () => choose(plan, card, live, isCurrent));
    box.appendChild(card);
  }
}

function entitlementValue(e, s) {
  if (!e.enabled) return "no";
  if (e.used !== null && e.used !== undefined) {
    // Metered: used in the current period against what the period includes (the limit is
    // per month; a yearly period includes 12 months').
    if (e.unlimited || e.limit === null) return `${count(e.used)} used (unlimited)`;
    const included = s.billingInterval === "YEAR" ? e.limit * 12 : e.limit;
    const perMonth = included === e.limit ? "" : `, ${count(e.limit)} a month`;
    return `${count(e.used)} / ${count(included)} (${count(e.remaining ?? 0)} left${perMonth})`;
  }
  if (e.unlimited) return "unlimited";
  return e.limit === null ? "yes" : e.limit.toLocaleString();
}

function cancels(s) {
  if (s.cancelAtPeriodEnd) return `at period end, ${when(s.currentPeriodEnd || s.cancelAt)}`;
  if (s.cancelAt) return when(s.cancelAt);
  return "no";
}

/** What a discount takes off, and for how long: "LAUNCH20: 20% off for 3 months, until …". */
function discountText(d) {
  const off = d.percentOff !== null && d.percentOff !== undefined
    ? `${Number(d.percentOff).toLocaleString()}% off`
    : `${money(d.amountOff ?? 0, d.currency || "usd")} off`;
  const lasts = d.duration === "FOREVER" ? "forever"
    : d.duration === "ONCE" ? "on one invoice"
    : `for ${plural(d.durationInMonths ?? 1, "month")}${d.end ? `, until ${when(d.end)}` : ""}`;
  const name = d.promotionCode || d.name || d.couponId;
  return `<li data-testid="discount" data-code="${esc(d.promotionCode || "")}"><strong>${esc(name)}</strong>: ${esc(off)} ${lasts}</li>`;
}

function renderSubscription(s) {
  const panel = $("#subscription-panel");
  panel.hidden = !s.hasSubscription;
  if (!s.hasSubscription) return;
  const live = isLive(s);
  // An ended subscription has no period running: say when it ended, and nothing about renewal.
  const ended = !live && Boolean(s.endedAt);
  const every = s.billingInterval === "YEAR" ? "yearly" : s.billingInterval === "MONTH" ? "monthly" : "";
  const plan = plans.find((p) => p.uid === s.planUid);
  $("#subscription").innerHTML = `
    <dt>Status</dt><dd><span data-testid="status" class="badge ${esc(s.status)}">${esc(s.status)}</span></dd>
    <dt>Access</dt><dd data-testid="access">${s.isActive ? "yes: the entitlements below apply" : "no"}</dd>
    <dt>Plan</dt><dd data-testid="plan" data-plan="${esc(s.planUid)}">${esc(planName(s.planUid))} · ${every}</dd>
    ${s.seats !== null && s.seats !== undefined ? `<dt>Seats</dt><dd data-testid="seats">${esc(count(s.seats))}</dd>` : ""}
    ${s.overages.length ? `<dt>Add-ons</dt><dd data-testid="overages">${s.overages.map(esc).join(", ")}</dd>` : ""}
    ${s.discounts.length && !ended ? `<dt>Discounts</dt><dd><ul class="discounts" data-testid="discounts">${s.discounts.map(discountText).join("")}</ul></dd>` : ""}
    ${ended
      ? `<dt>Ended</dt><dd data-testid="ended">${when(s.endedAt)}</dd>`
      : `<dt>Current period ends</dt><dd data-testid="period-end">${when(s.currentPeriodEnd)}</dd>
         <dt>Cancels</dt><dd data-testid="cancels">${cancels(s)}</dd>`}
    ${s.trialEnd && !ended ? `<dt>Trial ends</dt><dd data-testid="trial-end">${when(s.trialEnd)}</dd>` : ""}`;
  $("#entitlements").innerHTML = s.entitlements.length
    ? s.entitlements
        .map((e) => `<li data-key="${esc(e.key)}"><code>${esc(e.key)}</code>: ${esc(entitlementValue(e, s))}</li>`)
        .join("")
    : "<li>none while the subscription is not active</li>";
  const seats = $("#seats-form");
  seats.hidden = !live || !plan?.perSeat;
  if (!seats.hidden) {
    const input = $("#seats-quantity");
    input.min = plan.minSeats;
    if (plan.maxSeats) input.max = plan.maxSeats;
    else input.removeAttribute("max");
    input.value = s.seats ?? plan.minSeats;
    $("#seats-range").textContent = `${seatRange(plan)}, ${count(s.seats ?? 0)} held`;
  }
  $("#ended-note").hidden = !ended;
  $("#cancel-end").hidden = !live || s.cancelAtPeriodEnd;
  $("#cancel-now").hidden = !live;
  $("#resume").hidden = !live || !s.cancelAtPeriodEnd;
}

/** One metered feature: used / included, a bar, what is left, the overage switch and so far. */
function meter(f, s) {
  const id = esc(f.feature);
  const capped = f.included !== null;
  const bar = capped
    ? `<progress data-testid="meter-bar-${id}" aria-label="${id} used" max="${Math.max(f.included, 1)}"
        value="${Math.min(f.used, f.included)}"></progress>`
    : "";
  const left = !capped ? "unlimited" : f.remaining > 0 ? `${count(f.remaining)} left` : "none left";
  // Switched off while the period's reported overage waits for its invoice: the metered item
  // stays on the subscription until the period ends.
  const removalPending = f.removalPending;
  const state = !f.overageAvailable ? "not offered on this plan" : f.overageEnabled ? "on" : "off";
  const soFar = f.currency ? money(f.overageAmount, f.currency) : count(f.overageAmount);
  return `<div class="meter" data-testid="meter-${id}" data-feature="${id}">
      <div class="meter-head"><code>${id}</code>
        <span data-testid="meter-used-${id}">${count(f.used)} / ${capped ? count(f.included) : "unlimited"}</span>
        <span data-testid="meter-remaining-${id}" class="muted">${esc(left)}</span></div>
      ${bar}
      <div class="meter-overage">
        <span data-testid="overage-state-${id}">Overage: ${state}</span>
        <button type="button" data-testid="overage-toggle-${id}" data-feature="${id}"
          data-enable="${f.overageEnabled ? "false" : "true"}" ${f.overageAvailable ? "" : "disabled"}>
          Switch overage ${f.overageEnabled ? "off" : "on"}</button>
        ${f.overageAvailable ? `<span data-testid="overage-so-far-${id}">Overage so far:
          ${plural(f.overagePackages, "package")}, ${esc(soFar)}</span>` : ""}
      </div>
      ${removalPending ? `<p class="note" data-testid="overage-pending-${id}">overage off — this period's overage is still billed at its end</p>` : ""}
    </div>`;
}

function renderUsage(u, s) {
  usage = u;
  const panel = $("#usage-panel");
  panel.hidden = !u || !u.features.length;
  if (panel.hidden) return;
  $("#usage-period").innerHTML = `${when(u.periodStart)} – ${when(u.periodEnd)}`;
  $("#meters").innerHTML = u.features.map((f) => meter(f, s)).join("");
  for (const button of document.querySelectorAll("#meters button[data-feature]")) {
    button.addEventListener("click", () => switchOverage(button.dataset.feature, button.dataset.enable === "true"));
  }
  const select = $("#simulate-feature");
  const chosen = select.value;
  select.innerHTML = u.features.map((f) => `<option value="${esc(f.feature)}">${esc(f.feature)}</option>`).join("");
  if (u.features.some((f) => f.feature === chosen)) select.value = chosen;
}

function renderInvoices(invoices) {
  $("#invoices").innerHTML = invoices.length
    ? invoices
        .map((i) => `<li>${esc(i.number || "draft")} · ${esc(i.status)} · ${money(i.amountDue, i.currency)}
          ${i.hostedInvoiceUrl ? `<a href="${esc(i.hostedInvoiceUrl)}">view</a>` : ""}
          ${i.invoicePdf ? `<a href="${esc(i.invoicePdf)}">PDF</a>` : ""}</li>`)
        .join("")
    : "<li>none yet</li>";
}

const CARD = "id type brand last4 expMonth expYear isDefault";
let cards = [];
const brandName = (brand) => (brand ? brand[0].toUpperCase() + brand.slice(1) : "Card");
const cardName = (c) => `${brandName(c.brand)} •••• ${c.last4 || "????"}`;

/** The saved payment methods: brand, last four, expiry, the default, and what can be done. */
function renderCards(list) {
  cards = list;
  $("#cards-panel").hidden = false;
  $("#cards").innerHTML = list.length
    ? list
        .map((c) => {
          const expires = c.expMonth && c.expYear ? `expires ${String(c.expMonth).padStart(2, "0")}/${c.expYear}` : "";
          return `<li data-testid="card" data-id="${esc(c.id)}" data-default="${c.isDefault}">
            <strong data-testid="card-name">${esc(cardName(c))}</strong>
            <span data-testid="card-expiry" class="muted">${esc(expires)}</span>
            ${c.isDefault
              ? '<span data-testid="card-default" class="badge active">default</span>'
              : `<button type="button" data-testid="make-default" data-id="${esc(c.id)}">Make default</button>`}
            <button type="button" data-testid="remove-card" data-id="${esc(c.id)}">Remove</button></li>`;
        })
        .join("")
    : '<li data-testid="no-cards">none saved: renewals need a card (Checkout saves the one you pay with)</li>';
  for (const button of document.querySelectorAll("#cards button[data-testid=make-default]")) {
    button.addEventListener("click", () => makeDefault(button.dataset.id));
  }
  for (const button of document.querySelectorAll("#cards button[data-testid=remove-card]")) {
    button.addEventListener("click", () => removeCard(button.dataset.id));
  }
}

function showIdentity() {
  const who = identity();
  $("#who").textContent = who ? `signed in as ${who.org}` : "not signed in";
  if (who) {
    $("#org").value = who.org;
    $("#email").value = who.email || "";
  }
}

// ------------------------------------------------------------------ reading
async function refresh() {
  const data = await gql(`{ plans { uid name description features metered perSeat minSeats maxSeats
      prices { interval amount currency }
      overages { key name unit kind feature packSize packageSize prices { interval amount currency } } } }`);
  plans = data.plans;
  current = null;
  if (identity()) {
    const s = await gql(`{ subscriptionStatus { ${STATUS} }
      usage { periodStart periodEnd planUid features { ${FEATURE_USAGE} } }
      invoices(first: 5) { nodes { number status amountDue currency hostedInvoiceUrl invoicePdf } }
      paymentMethods { ${CARD} } }`);
    current = s.subscriptionStatus;
    renderSubscription(current);
    renderUsage(s.usage, current);
    renderInvoices(s.invoices.nodes);
    renderCards(s.paymentMethods);
  } else {
    $("#subscription-panel").hidden = true;
    $("#cards-panel").hidden = true;
  }
  renderPlans();
}

// ------------------------------------------------------------------ confirm steps
// Every change of a live subscription is shown first — what Stripe would bill, from
// previewSubscriptionChange — and made only on Confirm. The dialog is modal: nothing else on
// the page takes a click while it is open, and closing it (Cancel, Escape) changes nothing.
let confirmed = null;

function confirmStep(title, body, label, action) {
  confirmed = action;
  $("#confirm-title").textContent = title;
  $("#confirm-body").innerHTML = body;
  $("#confirm-ok").textContent = label;
  $("#confirm").showModal();
}

$("#confirm").addEventListener("close", () => {
  const action = $("#confirm").returnValue === "ok" ? confirmed : null;
  confirmed = null;
  $("#confirm").returnValue = "";
  if (action) action();
  else say("Nothing was changed.");
});

const PREVIEW = `query($input: PreviewChangeInput!) { previewSubscriptionChange(input: $input) { __typename
  ... on SubscriptionChangePreview { planUid billingInterval overages seats amountDueNow prorationAmount
    nextInvoice { date currency subtotal discountAmount total amountDue
      lines { description amount quantity periodStart periodEnd proration } } }
  ${ERRORS} } }`;

/** The preview, as the confirm step shows it: due now, proration, the next invoice and its lines. */
function previewHtml(p, code) {
  const invoice = p.nextInvoice;
  const m = (amount) => money(amount, invoice.currency);
  // The net of the invoice's proration lines: an earlier change's, not yet billed, count too.
  const proration = p.prorationAmount > 0
    ? `${m(p.prorationAmount)} for the rest of this period`
    : p.prorationAmount < 0 ? `${m(-p.prorationAmount)} credit for the unused time`
    : invoice.lines.some((l) => l.proration) ? `${m(0)}: the charges and credits cancel out` : "none";
  const lines = invoice.lines
    .map((l) => `<tr data-testid="preview-line"${l.proration ? ' class="proration"' : ""}>
        <td>${esc(l.description || "")}</td>
        <td class="muted">${when(l.periodStart)} – ${when(l.periodEnd)}</td>
        <td class="amount">${esc(m(l.amount))}</td></tr>`)
    .join("");
  const due = invoice.amountDue === invoice.total ? "" : ` (${esc(m(invoice.amountDue))} due after your credit)`;
  const discount = invoice.discountAmount
    ? `<tr data-testid="preview-discount" class="discount"><td>Discount</td><td></td>
        <td class="amount">${esc(m(-invoice.discountAmount))}</td></tr>`
    : "";
  return `<dl>
      <dt>Due now</dt><dd data-testid="preview-due-now">${esc(m(p.amountDueNow))}</dd>
      <dt>Proration</dt><dd data-testid="preview-proration">${esc(proration)}</dd>
      <dt>Next invoice</dt><dd data-testid="preview-next-invoice">${when(invoice.date)} · ${esc(m(invoice.total))}${due}</dd>
    </dl>
    <table class="lines" data-testid="preview-lines">${lines}${discount}</table>
    ${code ? `<p class="note" data-testid="preview-code">Promotion code <code>${esc(code)}</code> is in these amounts;
      it replaces your discounts when you confirm.</p>` : ""}`;
}

/** Preview ``input`` (PreviewChangeInput) with the promotion code, then on Confirm run ``commit``. */
function previewThen(title, input, code, commit) {
  busy(async () => {
    const data = await gql(PREVIEW, { input: { ...input, ...(code ? { promotionCode: code } : {}) } });
    const preview = unwrap(data.previewSubscriptionChange, "SubscriptionChangePreview");
    say("");
    confirmStep(title, previewHtml(preview, code), "Confirm", () => busy(commit));
  });
}

// ------------------------------------------------------------------ actions
const promotionCode = () => $("#promotion-code").value.trim() || null;

/** The seats chosen on a per-seat plan's card: a whole number, or null after saying why not. */
function cardSeats(plan, card) {
  const input = card.querySelector("input[type=number]");
  if (!plan.perSeat || !input) return undefined; // the current plan's card: the seats held stay
  const seats = Number(input.value);
  if (!Number.isInteger(seats) || seats < 1) {
    say(`Seats: a whole number, ${seatRange(plan)}.`, "error", "INVALID_SEATS");
    return null;
  }
  return seats;
}

const CHANGE = `mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) {
  __typename ... on SubscriptionPayload { subscription { status planUid seats overages } } ${ERRORS} } }`;

function choose(plan, card, live, isCurrent) {
  if (pending) return;
  if (!identity()) {
    say("Sign in first: purchases belong to an organization.", "error", "UNAUTHENTICATED");
    return;
  }
  const overages = checkedAddOns(card);
  const seats = cardSeats(plan, card);
  if (seats === null) return;
  const code = promotionCode();
  const billingInterval = interval();
  if (live) {
    const change = { planUid: plan.uid, billingInterval, overages, ...(seats ? { seats } : {}) };
    const every = billingInterval === "YEAR" ? "yearly" : "monthly";
    const title = isCurrent
      ? `Change the add-ons of ${plan.name}`
      : `Switch to ${plan.name} (${every}${seats ? `, ${plural(seats, "seat")}` : ""})`;
    previewThen(title, change, code, async () => {
      const data = await gql(CHANGE, { input: { ...change, ...(code ? { promotionCode: code } : {}) } });
      unwrap(data.changeSubscriptionPlan, "SubscriptionPayload");
      await refresh();
      say(isCurrent ? `Add-ons of ${plan.name} updated.` : `Switched to ${plan.name}.`, "success");
    });
    return;
  }
  busy(async () => {
    const data = await gql(
      `mutation($input: CheckoutInput!) { createCheckoutSession(input: $input) {
        __typename ... on CheckoutPayload { sessionId checkoutUrl } ${ERRORS} } }`,
      {
        input: {
          planUid: plan.uid, billingInterval, overages,
          ...(seats ? { seats } : {}),
          ...(code ? { promotionCode: code } : {}),
          successPath: `${location.pathname}?checkout=success`,
          cancelPath: `${location.pathname}?checkout=canceled`,
        },
      },
    );
    const payload = unwrap(data.createCheckoutSession, "CheckoutPayload");
    say("Taking you to the payment page…");
    window.location.assign(payload.checkoutUrl);
  });
}

function changeSeats(quantity) {
  if (pending) return;
  if (!Number.isInteger(quantity) || quantity < 1) {
    say("Seats: a whole number.", "error", "INVALID_SEATS");
    return;
  }
  previewThen(`Change to ${plural(quantity, "seat")}`, { seats: quantity }, null, async () => {
    const data = await gql(
      `mutation($quantity: Int!) { updateSeats(quantity: $quantity) { __typename
        ... on SubscriptionPayload { subscription { seats } } ${ERRORS} } }`,
      { quantity },
    );
    const payload = unwrap(data.updateSeats, "SubscriptionPayload");
    await refresh();
    say(`You now have ${plural(payload.subscription.seats, "seat")}.`, "success");
  });
}

/** A promotion code on the current plan alone: it replaces the subscription's discounts. */
function applyCode() {
  if (pending) return;
  const code = promotionCode();
  if (!code) {
    say("Type a promotion code first.", "error", "INVALID_PROMOTION_CODE");
    return;
  }
  previewThen(`Apply ${code} to ${planName(current.planUid)}`, {}, code, async () => {
    const input = { planUid: current.planUid, billingInterval: current.billingInterval, promotionCode: code };
    const data = await gql(CHANGE, { input });
    unwrap(data.changeSubscriptionPlan, "SubscriptionPayload");
    await refresh();
    say(`Promotion code ${code} applied.`, "success");
  });
}

// Payment methods: a card is added on Stripe's side (a SetupIntent confirmed by Stripe.js; in
// development, on the emulator's hosted page), then made the default or removed here.
const CARDS_CHANGED = `__typename ... on PaymentMethodsPayload { paymentMethods { ${CARD} } } ${ERRORS}`;

function addCard() {
  if (pending) return;
  busy(async () => {
    const data = await gql(
      `mutation($path: String) { createSetupIntent(returnPath: $path) { __typename
        ... on SetupIntentPayload { setupIntentId confirmationUrl } ${ERRORS} } }`,
      { path: location.pathname },
    );
    const payload = unwrap(data.createSetupIntent, "SetupIntentPayload");
    if (!payload.confirmationUrl) {
      // Against real Stripe: mount Stripe.js's Payment Element and call confirmSetup with clientSecret.
      throw new ApiError("Confirm this SetupIntent with Stripe.js (clientSecret): no hosted page here.", "STRIPE_JS");
    }
    say("Taking you to the card page…");
    window.location.assign(payload.confirmationUrl);
  });
}

function makeDefault(id) {
  if (pending) return;
  const card = cards.find((c) => c.id === id);
  busy(async () => {
    const data = await gql(`mutation($id: ID!) { setDefaultPaymentMethod(id: $id) { ${CARDS_CHANGED} } }`, { id });
    unwrap(data.setDefaultPaymentMethod, "PaymentMethodsPayload");
    await refresh();
    say(`${card ? cardName(card) : "The card"} is your default: renewals charge it.`, "success");
  });
}

function removeCard(id) {
  if (pending) return;
  const card = cards.find((c) => c.id === id);
  const name = card ? cardName(card) : "this card";
  confirmStep(
    `Remove ${name}`,
    `<p data-testid="remove-card-warning">${esc(name)} is removed from your account for good: to pay with it
      again you would enter it again.${card?.isDefault ? " It is your default: renewals then need another card." : ""}</p>`,
    "Remove card",
    () => busy(async () => {
      const data = await gql(`mutation($id: ID!) { detachPaymentMethod(id: $id) { ${CARDS_CHANGED} } }`, { id });
      unwrap(data.detachPaymentMethod, "PaymentMethodsPayload");
      await refresh();
      say(`${name} removed.`, "success");
    }),
  );
}

function act(mutation, done) {
  if (pending) return;
  busy(async () => {
    const data = await gql(`mutation { ${mutation} { __typename
      ... on SubscriptionPayload { subscription { ${STATUS} } } ${ERRORS} } }`);
    const payload = unwrap(Object.values(data)[0], "SubscriptionPayload");
    await refresh();
    say(done(payload.subscription));
  });
}

// Simulate usage: one event through the engine's own ingestion (recordUsage), as the product's
// backend would report it; the development sign-in may report its own organization's usage
// outside production (USAGE_SELF_REPORT).
function simulate(feature, quantity) {
  if (pending) return;
  busy(async () => {
    const data = await gql(
      `mutation($input: UsageEventInput!) { recordUsage(input: $input) { __typename
        ... on UsageRecorded { id status usage { used included } }
        ... on QuotaExceededError { feature included used } ${ERRORS} } }`,
      { input: { id: eventId(), feature, quantity } },
    );
    const result = data.recordUsage;
    await refresh();
    if (result.__typename === "QuotaExceededError") {
      const more = meteredAddon(usage?.planUid, feature) ? "switch overage on or upgrade" : "upgrade";
      throw new ApiError(
        `Quota reached: ${more}. ${count(result.used)} of ${count(result.included)} ${feature} are used this period; ` +
          `${count(quantity)} more would pass the limit, so nothing was recorded.`,
        result.code,
        result,
      );
    }
    const recorded = unwrap(result, "UsageRecorded");
    if (recorded.status === "DUPLICATE") {
      say(`DUPLICATE: event ${recorded.id} was recorded before and is counted once.`, "info", "DUPLICATE");
    } else {
      say(`ACCEPTED: ${count(quantity)} ${feature} recorded (${count(recorded.usage.used)} used this period).`,
        "success", "ACCEPTED");
    }
  });
}

function switchOverage(feature, enabled) {
  if (pending) return;
  busy(async () => {
    const data = await gql(
      `mutation($feature: String!, $enabled: Boolean!) { setOverage(feature: $feature, enabled: $enabled) {
        __typename ... on OveragePayload { feature overageEnabled removalPending } ${ERRORS} } }`,
      { feature, enabled },
    );
    const result = unwrap(data.setOverage, "OveragePayload");
    await refresh();
    if (result.overageEnabled) {
      say(`Overage on for ${feature}: usage beyond the included quantity is billed at period end.`, "success");
    } else if (result.removalPending) {
      say(`Overage off for ${feature} — this period's overage is still billed at its end.`);
    } else {
      say(`Overage off for ${feature}: usage beyond the included quantity is refused.`);
    }
  });
}

// Back from the hosted Checkout page: confirm the session (the success URL carries its id).
// Returns the verification, told to the buyer (checkedOut) once the page shows the new state.
async function verifyReturn() {
  const params = new URLSearchParams(window.location.search);
  const sessionId = params.get("session_id");
  const outcome = params.get("checkout");
  if (outcome) history.replaceState(null, "", location.pathname);
  if (outcome === "canceled") say("Checkout canceled: nothing was charged.");
  // Back from confirming a SetupIntent (Stripe.js appends these; the secret leaves the URL).
  const setup = params.get("redirect_status");
  if (params.get("setup_intent")) {
    history.replaceState(null, "", location.pathname);
    if (setup === "succeeded") say("Card saved.", "success");
    else say(`The card was not saved (${setup || "unknown"}).`, "error", "SETUP_NOT_SUCCEEDED");
  }
  if (!sessionId) return null;
  say("Confirming your payment…");
  const data = await gql(
    `mutation($id: ID!) { verifyCheckoutSession(sessionId: $id) { __typename
      ... on VerifyCheckoutPayload { status paymentStatus subscription { status planUid } } ${ERRORS} } }`,
    { id: sessionId },
  );
  return unwrap(data.verifyCheckoutSession, "VerifyCheckoutPayload");
}

function checkedOut(result) {
  if (result.status !== "complete") {
    say(`Checkout is ${result.status}: nothing was charged.`, "error", "CHECKOUT_NOT_COMPLETE");
  } else if (result.paymentStatus === "unpaid") {
    say("Checkout complete: the payment is still pending.");
  } else {
    say(`Payment received: you are subscribed to ${planName(result.subscription.planUid)}.`, "success");
  }
}

$("#signin").addEventListener("submit", (event) => {
  event.preventDefault();
  if (pending) return;
  const org = $("#org").value.trim();
  localStorage.setItem(IDENTITY_KEY, JSON.stringify({ org, email: $("#email").value.trim() }));
  showIdentity();
  say("");
  busy(refresh);
});
for (const radio of document.querySelectorAll("input[name=interval]")) {
  radio.addEventListener("change", () => renderPlans());
}
$("#cancel-end").addEventListener("click", () =>
  act("cancelSubscription(atPeriodEnd: true)", (s) =>
    `Your subscription stays active until ${longDate(s.currentPeriodEnd || s.cancelAt)}, then ends.`));
$("#cancel-now").addEventListener("click", () => {
  if (pending || !isLive(current)) return;
  confirmStep(
    "Cancel now",
    `<p data-testid="cancel-now-warning">Your ${esc(planName(current.planUid))} subscription ends now: access stops at
      once, and the rest of the period (to ${when(current.currentPeriodEnd)}) is not refunded. Usage so far is billed
      on a final invoice. To keep access until then, cancel at the period end instead.</p>`,
    "Cancel now",
    () => act("cancelSubscription(atPeriodEnd: false)", () => "Your subscription is canceled: it has ended."),
  );
});
$("#seats-form").addEventListener("submit", (event) => {
  event.preventDefault();
  changeSeats(Number($("#seats-quantity").value));
});
$("#promotion-apply").addEventListener("click", applyCode);
$("#add-card").addEventListener("click", addCard);
$("#resume").addEventListener("click", () =>
  act("resumeSubscription", () => "Your subscription continues: the cancellation is withdrawn."));
// The form is novalidate: a bad quantity is told in the message box, with a code, like the API's.
$("#simulate").addEventListener("submit", (event) => {
  event.preventDefault();
  const quantity = Number($("#simulate-quantity").value);
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > 1e9) {
    say("Quantity: a whole number from 1 to 1,000,000,000.", "error", "INVALID_QUANTITY");
    return;
  }
  simulate($("#simulate-feature").value, quantity);
});
$("#portal").addEventListener("click", () => {
  if (pending) return;
  busy(async () => {
    const data = await gql(
      `mutation($path: String) { createBillingPortalSession(returnPath: $path) { __typename
        ... on PortalPayload { url } ${ERRORS} } }`,
      { path: location.pathname },
    );
    window.location.assign(unwrap(data.createBillingPortalSession, "PortalPayload").url);
  });
});

showIdentity();
busy(async () => {
  let verified = null;
  try {
    verified = await verifyReturn();
  } finally {
    await refresh();
  }
  if (verified) checkedOut(verified);
});
