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

// Every mutation answers a union: the success payload, or a typed error (UserError). A fragment
// may only name members of the mutation's union: ERRORS suits the subscription mutations.
const USER_ERROR = "... on UserError { code message }";
const FIELDS = "... on ValidationError { fields { field message } }";
const RETRY = "... on RetryableError { retryAfterSeconds }";
const ERRORS = `${USER_ERROR} ${FIELDS} ... on PaymentDeclinedError { declineCode } ${RETRY}`;

/** The success payload of a union result, or throw the typed error with its own message. */
function unwrap(result, success) {
  if (result.__typename === success) return result;
  let message = result.message || `Unexpected answer: ${result.__typename}`;
  if (result.fields && result.fields.length) {
    message += ` (${result.fields.map((f) => `${f.field}: ${f.message}`).join("; ")})`;
  }
  if (result.retryAfterSeconds) message += ` Try again in ${Math.ceil(result.retryAfterSeconds)} s.`;
  throw new ApiError(message, result.code || result.__typename, result);
}

// ------------------------------------------------------------------ page state
function say(text, kind = "info", code = "") {
  const box = $("#message");
  box.textContent = text;
  box.className = text ? kind : "";
  box.dataset.code = code;
}

const fail = (error) => say(error.message, "error", error.code || "ERROR");

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

const STATUS = `hasSubscription status isActive planUid billingInterval overages currentPeriodEnd
  cancelAtPeriodEnd cancelAt canceledAt endedAt trialEnd entitlements { key enabled limit unlimited used remaining }`;
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
function renderPlans() {
  const box = $("#plans");
  box.innerHTML = "";
  const live = isLive(current);
  for (const plan of plans) {
    const price = plan.prices.find((p) => p.interval === interval());
    if (!price) continue;
    const card = document.createElement("div");
    card.className = "plan";
    card.dataset.plan = plan.uid;
    card.dataset.testid = `plan-${plan.uid}`;
    const addOns = plan.overages
      .map((o) => [o, o.prices.find((p) => p.interval === interval())])
      .filter(([, p]) => p)
      .map(([o, p]) => `<label data-testid="addon-${esc(plan.uid)}-${esc(o.key)}" data-kind="${esc(o.kind)}"
        ${o.kind === "METERED" ? 'title="Chosen: overage is on from the start; you can switch it later."' : ""}>
        <input type="checkbox" value="${esc(o.key)}"> ${esc(o.name)}
        <small>${esc(addOnText(o, p))}</small></label>`)
      .join("");
    const isCurrent = live && current.planUid === plan.uid && current.billingInterval === interval();
    const label = isCurrent ? "Current plan" : live ? "Switch to this plan" : "Subscribe";
    card.innerHTML = `
      <h3>${esc(plan.name)}</h3>
      <div class="price">${money(price.amount, price.currency)} <small>/ ${interval() === "YEAR" ? "year" : "month"}</small></div>
      <p>${esc(plan.description)}</p>
      <ul>${plan.features.map((f) => `<li>${esc(f)}</li>`).join("")}</ul>
      ${addOns ? `<div class="addons">${addOns}</div>` : ""}
      <button class="primary" data-testid="choose-${esc(plan.uid)}" ${isCurrent ? "disabled" : ""}>${label}</button>`;
    card.querySelector("button").addEventListener("click", () => choose(plan, card, live));
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
  if (s.endedAt || s.canceledAt) return `ended ${when(s.endedAt || s.canceledAt)}`;
  return "no";
}

function renderSubscription(s) {
  const panel = $("#subscription-panel");
  panel.hidden = !s.hasSubscription;
  if (!s.hasSubscription) return;
  const every = s.billingInterval === "YEAR" ? "yearly" : s.billingInterval === "MONTH" ? "monthly" : "";
  $("#subscription").innerHTML = `
    <dt>Status</dt><dd><span data-testid="status" class="badge ${esc(s.status)}">${esc(s.status)}</span></dd>
    <dt>Access</dt><dd data-testid="access">${s.isActive ? "yes: the entitlements below apply" : "no"}</dd>
    <dt>Plan</dt><dd data-testid="plan" data-plan="${esc(s.planUid)}">${esc(planName(s.planUid))} · ${every}</dd>
    ${s.overages.length ? `<dt>Add-ons</dt><dd data-testid="overages">${s.overages.map(esc).join(", ")}</dd>` : ""}
    <dt>Current period ends</dt><dd data-testid="period-end">${when(s.currentPeriodEnd)}</dd>
    <dt>Cancels</dt><dd data-testid="cancels">${cancels(s)}</dd>
    ${s.trialEnd ? `<dt>Trial ends</dt><dd data-testid="trial-end">${when(s.trialEnd)}</dd>` : ""}`;
  $("#entitlements").innerHTML = s.entitlements.length
    ? s.entitlements
        .map((e) => `<li data-key="${esc(e.key)}"><code>${esc(e.key)}</code>: ${esc(entitlementValue(e, s))}</li>`)
        .join("")
    : "<li>none while the subscription is not active</li>";
  const live = isLive(s);
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
  const data = await gql(`{ plans { uid name description features metered
      prices { interval amount currency }
      overages { key name unit kind feature packSize packageSize prices { interval amount currency } } } }`);
  plans = data.plans;
  current = null;
  if (identity()) {
    const s = await gql(`{ subscriptionStatus { ${STATUS} }
      usage { periodStart periodEnd planUid features { ${FEATURE_USAGE} } }
      invoices(first: 5) { nodes { number status amountDue currency hostedInvoiceUrl invoicePdf } } }`);
    current = s.subscriptionStatus;
    renderSubscription(current);
    renderUsage(s.usage, current);
    renderInvoices(s.invoices.nodes);
  } else {
    $("#subscription-panel").hidden = true;
  }
  renderPlans();
}

// ------------------------------------------------------------------ actions
function choose(plan, card, live) {
  if (pending) return;
  if (!identity()) {
    say("Sign in first: purchases belong to an organization.", "error", "UNAUTHENTICATED");
    return;
  }
  const overages = [...card.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value);
  busy(async () => {
    if (live) {
      const data = await gql(
        `mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) {
          __typename ... on SubscriptionPayload { subscription { status } } ${ERRORS} } }`,
        { input: { planUid: plan.uid, billingInterval: interval(), overages } },
      );
      unwrap(data.changeSubscriptionPlan, "SubscriptionPayload");
      say(`Switched to ${plan.name}.`);
      await refresh();
      return;
    }
    const data = await gql(
      `mutation($input: CheckoutInput!) { createCheckoutSession(input: $input) {
        __typename ... on CheckoutPayload { sessionId checkoutUrl } ${ERRORS} } }`,
      {
        input: {
          planUid: plan.uid, billingInterval: interval(), overages,
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
        ... on QuotaExceededError { feature included used } ${USER_ERROR} ${RETRY} } }`,
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
        __typename ... on OveragePayload { feature overageEnabled removalPending } ${USER_ERROR} ${FIELDS} ${RETRY} } }`,
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
$("#cancel-now").addEventListener("click", () =>
  act("cancelSubscription(atPeriodEnd: false)", () => "Your subscription is canceled."));
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
