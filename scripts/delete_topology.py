"""Deletes the exchanges and queues of one broker prefix (used after fuzzing runs).

Speaks AMQP 0-9-1 through the `pika` client installed in the project's virtualenv.
"""
import sys

import pika

prefix = sys.argv[1]
connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
channel = connection.channel()
for queue in (f"{prefix}.stage", f"{prefix}.dead"):
    channel.queue_delete(queue=queue)
for exchange in (f"{prefix}.work", f"{prefix}.dlx", f"{prefix}.events"):
    channel.exchange_delete(exchange=exchange)
connection.close()
