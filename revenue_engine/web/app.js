// A build-free SPA for the revenue-engine GraphQL API (development demo).
// It signs in with the development headers; a real SPA sends `Authorization: Bearer <JWT>`.
const $ = (sel) => document.querySelector(sel);
const money = (amount, currency) =>
  new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount / 100);
// Text from the API goes into HTML through esc(): admins write plan names, not code.
const esc = (text) =>
  String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const date = (iso) => (iso ? new Date(iso).toLocaleDateString() : "—");

function identity() {
  return JSON.parse(localStorage.getItem("re-demo-identity") || "null");
}

async function gql(query, variables = {}) {
  const who = identity();
  const headers = { "content-type": "application/json" };
  if (who) {
    headers["x-organization-id"] = who.org;
    if (who.email) headers["x-customer-email"] = who.email;
  }
  const response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    throw new Error(`${e.extensions?.code || "ERROR"}: ${e.message}`);
  }
  return body.data;
}

// A union result: the success payload, or throw the typed error's message.
function unwrap(result, success) {
  if (result.__typename !== success) throw new Error(`${result.code}: ${result.message}`);
  return result;
}

function say(text, isError = false) {
  const box = $("#message");
  box.textContent = text;
  box.className = isError ? "error" : "";
}

const ERRORS = "... on UserError { __typename code message }";
const STATUS = `status isActive planUid billingInterval currentPeriodEnd cancelAtPeriodEnd
  cancelAt trialEnd hasSubscription entitlements { key enabled limit }`;

let plans = [];

function interval() {
  return document.querySelector("input[name=interval]:checked").value;
}

function renderPlans(current) {
  const box = $("#plans");
  box.innerHTML = "";
  for (const plan of plans) {
    const price = plan.prices.find((p) => p.interval === interval());
    if (!price) continue;
    const card = document.createElement("div");
    card.className = "plan";
    card.dataset.plan = plan.uid;
    const addOns = plan.overages
      .filter((o) => o.prices.some((p) => p.interval === interval()))
      .map((o) => {
        const p = o.prices.find((x) => x.interval === interval());
        return `<label><input type="checkbox" value="${esc(o.key)}"> ${esc(o.name)} (${esc(o.unit)}) +${money(p.amount, p.currency)}</label><br>`;
      })
      .join("");
    const isCurrent = current && current.planUid === plan.uid && current.billingInterval === interval();
    const live = current && ["active", "trialing", "past_due"].includes(current.status);
    card.innerHTML = `
      <h3>${esc(plan.name)}</h3>
      <div class="price">${money(price.amount, price.currency)} <small>/ ${interval().toLowerCase()}</small></div>
      <p>${esc(plan.description)}</p>
      <ul>${plan.features.map((f) => `<li>${esc(f)}</li>`).join("")}</ul>
      <div class="addons">${addOns}</div>
      <button class="primary" data-testid="choose-${esc(plan.uid)}" ${isCurrent ? "disabled" : ""}>
        ${isCurrent ? "Current plan" : live ? "Switch to this plan" : "Subscribe"}</button>`;
    card.querySelector("button").addEventListener("click", () => choose(plan, card, live));
    box.appendChild(card);
  }
}

async function choose(plan, card, live) {
  const overages = [...card.querySelectorAll("input[type=checkbox]:checked")].map((i) => i.value);
  try {
    if (live) {
      const data = await gql(
        `mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) {
          __typename ... on SubscriptionPayload { subscription { ${STATUS} } } ${ERRORS} } }`,
        { input: { planUid: plan.uid, billingInterval: interval(), overages } },
      );
      unwrap(data.changeSubscriptionPlan, "SubscriptionPayload");
      say(`Switched to ${plan.name}.`);
      return refresh();
    }
    const data = await gql(
      `mutation($input: CheckoutInput!) { createCheckoutSession(input: $input) {
        __typename ... on CheckoutPayload { sessionId checkoutUrl } ${ERRORS} } }`,
      { input: { planUid: plan.uid, billingInterval: interval(), overages,
                 successPath: "/demo/?checkout=success", cancelPath: "/demo/?checkout=canceled" } },
    );
    const payload = unwrap(data.createCheckoutSession, "CheckoutPayload");
    window.location.assign(payload.checkoutUrl);
  } catch (error) {
    say(error.message, true);
  }
}

function renderSubscription(s) {
  const panel = $("#subscription-panel");
  panel.hidden = !s.hasSubscription;
  if (!s.hasSubscription) return;
  $("#subscription").innerHTML = `
    <dt>Status</dt><dd data-testid="status">${esc(s.status)}${s.isActive ? " (active)" : ""}</dd>
    <dt>Plan</dt><dd data-testid="plan">${esc(s.planUid || "—")} / ${(s.billingInterval || "").toLowerCase()}</dd>
    <dt>Current period ends</dt><dd>${date(s.currentPeriodEnd)}</dd>
    <dt>Cancels</dt><dd data-testid="cancels">${s.cancelAtPeriodEnd ? `at period end (${date(s.currentPeriodEnd)})` : s.cancelAt ? date(s.cancelAt) : "no"}</dd>
    <dt>Trial ends</dt><dd>${date(s.trialEnd)}</dd>`;
  $("#entitlements").innerHTML = s.entitlements
    .map((e) => `<li>${esc(e.key)}: ${e.enabled ? (e.limit === null ? "unlimited" : e.limit) : "no"}</li>`)
    .join("");
  const live = ["active", "trialing", "past_due"].includes(s.status);
  $("#cancel-end").hidden = !live || s.cancelAtPeriodEnd;
  $("#cancel-now").hidden = !live;
  $("#resume").hidden = !live || !s.cancelAtPeriodEnd;
}

async function refresh() {
  const data = await gql(`{ plans { uid name description features
      prices { interval amount currency } overages { key name unit prices { interval amount currency } } } }`);
  plans = data.plans;
  let current = null;
  if (identity()) {
    const s = await gql(`{ subscriptionStatus { ${STATUS} } invoices(first: 5) { nodes {
        number status amountDue currency hostedInvoiceUrl invoicePdf } } }`);
    current = s.subscriptionStatus;
    renderSubscription(current);
    $("#invoices").innerHTML = s.invoices.nodes
      .map((i) => `<li>${esc(i.number || "draft")} · ${esc(i.status)} · ${money(i.amountDue, i.currency)}
        ${i.hostedInvoiceUrl ? `<a href="${esc(i.hostedInvoiceUrl)}">view</a>` : ""}</li>`)
      .join("");
  }
  renderPlans(current);
}

async function act(mutation, done) {
  try {
    const data = await gql(`mutation { ${mutation} { __typename
      ... on SubscriptionPayload { subscription { ${STATUS} } } ${ERRORS} } }`);
    unwrap(Object.values(data)[0], "SubscriptionPayload");
    say(done);
    await refresh();
  } catch (error) {
    say(error.message, true);
  }
}

async function verifyReturn() {
  const params = new URLSearchParams(window.location.search);
  const sessionId = params.get("session_id");
  if (params.get("checkout") === "canceled") say("Checkout canceled: nothing was charged.");
  if (!sessionId) return;
  history.replaceState(null, "", "/demo/");
  try {
    const data = await gql(
      `mutation($id: ID!) { verifyCheckoutSession(sessionId: $id) { __typename
        ... on VerifyCheckoutPayload { status paymentStatus subscription { ${STATUS} } } ${ERRORS} } }`,
      { id: sessionId },
    );
    const result = unwrap(data.verifyCheckoutSession, "VerifyCheckoutPayload");
    if (result.status === "complete") say(`Payment ${result.paymentStatus}: welcome aboard!`);
    else say(`Checkout is ${result.status}: nothing was charged.`, true);
  } catch (error) {
    say(error.message, true);
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

$("#signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  localStorage.setItem("re-demo-identity", JSON.stringify({ org: $("#org").value, email: $("#email").value }));
  showIdentity();
  say("");
  await refresh();
});
for (const radio of document.querySelectorAll("input[name=interval]")) {
  radio.addEventListener("change", () => refresh());
}
$("#cancel-end").addEventListener("click", () => act("cancelSubscription(atPeriodEnd: true)", "Your subscription will end at the period end."));
$("#cancel-now").addEventListener("click", () => act("cancelSubscription(atPeriodEnd: false)", "Your subscription is canceled."));
$("#resume").addEventListener("click", () => act("resumeSubscription", "Your subscription continues."));
$("#portal").addEventListener("click", async () => {
  try {
    const data = await gql(`mutation { createBillingPortalSession(returnPath: "/demo/") { __typename
      ... on PortalPayload { url } ${ERRORS} } }`);
    window.location.assign(unwrap(data.createBillingPortalSession, "PortalPayload").url);
  } catch (error) {
    say(error.message, true);
  }
});

showIdentity();
await verifyReturn();
await refresh().catch((error) => say(error.message, true));
