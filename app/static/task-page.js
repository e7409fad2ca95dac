// Start the sample task, follow it through GET /task/<id>, cancel it with DELETE.
"use strict";

const FINAL_STATES = ["SUCCESS", "FAILURE", "REVOKED"];
const POLL_MILLISECONDS = 200;

const problem = document.getElementById("problem");

document.getElementById("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.textContent = "";
  const seconds = Number(document.getElementById("seconds").value);
  const response = await fetch("/task/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ seconds }),
  });
  const body = await response.json();
  if (!response.ok) {
    problem.textContent = body.error.message;
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
    const response = await fetch(`/task/${taskId}`);
    const body = await response.json();
    if (!response.ok) {
      show(row, "UNKNOWN", body.error.message);
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
  const response = await fetch(`/task/${taskId}`, { method: "DELETE" });
  if (!response.ok) {
    const body = await response.json();
    problem.textContent = body.error.message;
  }
}
