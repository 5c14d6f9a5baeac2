"""Deletes the exchanges and queues of one broker prefix (used after fuzzing runs).

Speaks AMQP 0-9-1 through the `pika` client installed in the project's virtualenv.
"""
import sys

import pika

prefix = sys.argv[1]
connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
channel = connection.channel()
# The delay queues of the default retry delays (5 s, 30 s, 120 s).
delay_queues = tuple(f"{prefix}.delay.{ms}ms" for ms in (5000, 30000, 120000))
for queue in (f"{prefix}.stage", f"{prefix}.dead") + delay_queues:
    channel.queue_delete(queue=queue)
for exchange in (f"{prefix}.work", f"{prefix}.dlx", f"{prefix}.events"):
    channel.exchange_delete(exchange=exchange)
connection.close()
