"""Avro, Protobuf and JSON Schema topics: values framed by Confluent's serializers, decoded in bulk.

``cl.open("kafka://host:9092/orders", registry="http://host:8081", mapping=...)`` reads a
topic whose values were written through a schema registry (Confluent's, or Apicurio's
Confluent API ``.../apis/ccompat/v7``); ``schemas=`` names local schema files instead, for
offline work. The pieces, one idea each:

* :mod:`~.client`: the registry's REST API (credentials from ``CONCURSUS_LAB_REGISTRY_*``);
* :mod:`~.schemas`: schemas by id, fetched once per read, from a registry or local files;
* :mod:`~.wire`: the framings (``0x00`` + id, ``0x01`` + GUID, the id in a header, Protobuf's
  message indexes) split off every value at once;
* :mod:`~.avro` and :mod:`~.protobuf`: a schema group's bodies decoded into columns in one
  call each, every writer version resolved onto one reader schema;
* :mod:`~.values`: all of that as the value decoder of a mapped topic;
* :mod:`~.layout` and :mod:`~.topic`: Concursus events as Avro records (what ``append``
  writes), and the source itself.
"""
