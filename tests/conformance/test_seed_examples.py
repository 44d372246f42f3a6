"""The seed model page's own examples (cloudflare-docs, content/workers-ai/models/llm.md):
curl, Python requests and Node, as published, with only {ACCOUNT_ID}, {API_TOKEN} and the
host put in. (The page's oldest version had a missing colon and an {"input": ...} wrapper;
the published chat-style version below runs as written.)"""
import ast
import json
import shutil
import subprocess
import sys

import pytest

CURL = """curl https://api.cloudflare.com/client/v4/accounts/{ACCOUNT_ID}/ai/run/@cf/meta/llama-2-7b-chat-int8 \\
  -X POST \\
  -H "Authorization: Bearer {API_TOKEN}" \\
  -d '{ "messages": [{ "role": "system", "content": "You are a friendly assistant" }, { "role": "user", "content": "Why is pizza so good" }]}'"""

PYTHON = '''import requests

API_BASE_URL = "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/run/"
headers = {"Authorization": "Bearer {API_TOKEN}"}

def run(model, prompt):
  input = {
    "messages": [
      { "role": "system", "content": "You are a friendly assistant" },
      { "role": "user", "content": prompt }
    ]
  }
  response = requests.post(f"{API_BASE_URL}{model}", headers=headers, json=input)
  return response.json()

output = run("@cf/meta/llama-2-7b-chat-int8", "Tell me a story")
print(output)
'''

NODE = """async function run(model, prompt) {
  const messages = [
    { role: 'system', content: 'You are a friendly assistant' },
    { role: 'user', content: prompt }
  ];

  const response = await fetch(
    `https://api.cloudflare.com/client/v4/accounts/{ACCOUNT_ID}/ai/run/${model}`,
    {
      headers: { Authorization: "Bearer {API_TOKEN}" },
      method: "POST",
      body: JSON.stringify({ messages }),
    }
  );
  const result = await response.json();
  return result;
}

run('@cf/meta/llama-2-7b-chat-int8', 'Tell me a story').then((response) => {
    console.log(JSON.stringify(response));
});
"""


def fill(text: str, server) -> str:
    for placeholder, value in (("{ACCOUNT_ID}", server.account), ("{account_id}", server.account),
                               ("{API_TOKEN}", server.token),
                               ("https://api.cloudflare.com/client/v4", server.api_root)):
        text = text.replace(placeholder, value)
    return text


def check(answer: dict):
    assert answer["success"] is True and answer["errors"] == []
    assert isinstance(answer["result"]["response"], str) and answer["result"]["response"].strip()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_curl(server):
    done = subprocess.run(["bash", "-c", fill(CURL, server)], capture_output=True, text=True,
                          timeout=60)
    check(json.loads(done.stdout))


def test_python_requests(server):
    done = subprocess.run([sys.executable, "-c", fill(PYTHON, server)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    check(ast.literal_eval(done.stdout.strip()))           # it prints the dict


@pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js on this machine")
def test_node_fetch(server):
    done = subprocess.run(["node", "-e", fill(NODE, server)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout))
