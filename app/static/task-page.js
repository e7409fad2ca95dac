// Start the sample task, follow it through GET /task/<id>, cancel it with DELETE.
"use strict";

const FINAL_STATES = ["SUCCESS", "FAILURE", "REVOKED"];
const POLL_MILLISECONDS = 200;
// The token lives in this tab's sessionStorage only: never a cookie, a URL or a log.
const TOKEN_KEY = "task-page-token";

const problem = document.getElementById("problem");
const tokenField = document.getElementById("token"); // only when the service requires tokens
if (tokenField) {
  tokenField.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
}

document.getElementById("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.textContent = "";
  if (tokenField) {
    sessionStorage.setItem(TOKEN_KEY, tokenField.value.trim());
  }
  const seconds = Number(document.getElementById("seconds").value);
  const response = await api("/task/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ seconds }),
  });
  const body = await response.json();
  if (!response.ok) {
    problem.textContent = refusal(response, body);
    return;
  }
  follow(addRow(body.task_id), body.task_id);
});

function addRow(taskId) {
  const row = document.getElementById("task-row").content.firstElementChild.cloneNode(true);
  row.dataset.taskId = taskId;
  row.querySelector(".task-id").textContent = taskId.slice(0, 8);
  row.querySelector(".cancel").addEventListener("click", () => cancel(row, taskId));
  document.getElementById("tasks").prepend(row);
  return row;
}

async function follow(row, taskId) {
  for (;;) {
    const response = await api(`/task/${taskId}`);
    const body = await response.json();
    if (!response.ok) {
      show(row, "UNKNOWN", refusal(response, body));
      return;
    }
    render(row, body);
    if (FINAL_STATES.includes(body.state)) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MILLISECONDS));
  }
}

function render(row, body) {
  const bar = row.querySelector("progress");
  if (body.state === "PROGRESS") {
    bar.value = body.progress;
  } else if (body.state === "SUCCESS") {
    bar.value = 1;
  }
  if (body.state === "SUCCESS") {
    show(row, body.state, `finished at ${body.result}`);
  } else if (body.state === "FAILURE" || body.state === "RETRY") {
    show(row, body.state, `${body.error.type}: ${body.error.message}`);
  } else if (body.state === "REVOKED") {
    show(row, body.state, "cancelled");
  } else {
    show(row, body.state, "");
  }
}

function show(row, state, outcome) {
  row.querySelector(".state").textContent = state;
  row.querySelector(".outcome").textContent = outcome;
  row.querySelector(".cancel").disabled = FINAL_STATES.includes(state) || state === "UNKNOWN";
}

async function cancel(row, taskId) {
  const response = await api(`/task/${taskId}`, { method: "DELETE" });
  if (!response.ok) {
    problem.textContent = refusal(response, await response.json());
  }
}

// A call to this API, with the tab's token, if any, in the Authorization header.
function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { ...options.headers, Authorization: `Bearer ${token}` } : options.headers;
  return fetch(path, { ...options, headers });
}

// Why the API said no: a 401 is about the token, whatever the route.
function refusal(response, body) {
  if (response.status !== 401 || !tokenField) {
    return body.error.message;
  }
  tokenField.focus();
  return sessionStorage.getItem(TOKEN_KEY)
    ? "That token was refused: check it and try again."
    : "This service needs a token: enter it above.";
}
