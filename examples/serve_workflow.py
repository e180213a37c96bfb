"""The NEAR AI vector-store tutorial's workflow, run against `vscli serve` with the official openai SDK.

    vscli serve --port 8000 &
    python examples/serve_workflow.py http://127.0.0.1:8000/v1 [API_KEY]

Create a store, upload a file, attach it, wait until it is processed, read it back, search, and delete
it — the same calls a script makes against OpenAI or NEAR AI, with only the base URL changed.
"""

import sys
import time
from pathlib import Path

import openai

base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1"
api_key = sys.argv[2] if len(sys.argv) > 2 else "not-needed-on-localhost"
dataset = Path(__file__).resolve().parent / "dataset"
client = openai.OpenAI(base_url=base_url, api_key=api_key)

# 1. Create a vector store
vector_store = client.vector_stores.create(name="My_Vector_Store")
print(f"Vector store created: {vector_store.id}")

# 2. Upload and attach a file
uploaded_file = client.files.create(file=open(dataset / "data_mining.md", "rb"), purpose="assistants")
client.vector_stores.files.create(vector_store_id=vector_store.id, file_id=uploaded_file.id)
print(f"File uploaded and attached: {uploaded_file.filename}")

# 3. Wait for processing
while True:
    status = client.vector_stores.retrieve(vector_store.id)
    if status.file_counts.completed == 1:
        break
    if status.file_counts.failed:
        sys.exit("processing failed: " + str(client.vector_stores.files.list(vector_store.id).data[0].last_error))
    time.sleep(1)
print("File processed! The vector store is ready.")

# 4. Retrieve the file's raw content
raw_bytes = client.files.content(file_id=uploaded_file.id).read()
assert raw_bytes == (dataset / "data_mining.md").read_bytes()
print("Retrieved file content:", raw_bytes.decode("utf-8")[:60].replace("\n", " "), "...")

# 5. Search the store
results = client.vector_stores.search(vector_store_id=vector_store.id, query="what is data mining?",
                                      max_num_results=2)
for result in results:
    print(f"{result.score:.4f}  {result.filename}: {result.content[0].text[:60]!r}")

# 6. Delete the file from the store
client.vector_stores.files.delete(vector_store_id=vector_store.id, file_id=uploaded_file.id)
print(f"File {uploaded_file.id} deleted from the vector store.")
