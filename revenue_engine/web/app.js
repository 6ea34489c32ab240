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

// Every mutation answers a union: the success payload, or a typed error (UserError).
const ERRORS = `... on UserError { code message }
  ... on ValidationError { fields { field message } }
  ... on PaymentDeclinedError { declineCode }
  ... on RetryableError { retryAfterSeconds }`;

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
  cancelAtPeriodEnd cancelAt canceledAt endedAt trialEnd entitlements { key enabled limit unlimited }`;

let plans = [];
let current = null;

const interval = () => document.querySelector("input[name=interval]:checked").value;
const planName = (uid) => plans.find((p) => p.uid === uid)?.name || uid || "—";
const isLive = (s) => Boolean(s && s.hasSubscription && LIVE.includes(s.status));

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
      .map(([o, p]) => `<label><input type="checkbox" value="${esc(o.key)}"> ${esc(o.name)}
        <small>(${esc(o.unit)})</small> +${money(p.amount, p.currency)}</label>`)
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

function entitlementValue(e) {
  if (!e.enabled) return "no";
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
        .map((e) => `<li data-key="${esc(e.key)}"><code>${esc(e.key)}</code>: ${esc(entitlementValue(e))}</li>`)
        .join("")
    : "<li>none while the subscription is not active</li>";
  const live = isLive(s);
  $("#cancel-end").hidden = !live || s.cancelAtPeriodEnd;
  $("#cancel-now").hidden = !live;
  $("#resume").hidden = !live || !s.cancelAtPeriodEnd;
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
  const data = await gql(`{ plans { uid name description features
      prices { interval amount currency } overages { key name unit prices { interval amount currency } } } }`);
  plans = data.plans;
  current = null;
  if (identity()) {
    const s = await gql(`{ subscriptionStatus { ${STATUS} } invoices(first: 5) { nodes {
        number status amountDue currency hostedInvoiceUrl invoicePdf } } }`);
    current = s.subscriptionStatus;
    renderSubscription(current);
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
