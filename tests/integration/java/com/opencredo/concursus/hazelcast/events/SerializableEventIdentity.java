package com.opencredo.concursus.hazelcast.events;

import java.io.Serializable;
import java.time.Instant;

/**
 * A stand-in with the wire shape of Concursus's key class of the same name (concursus-hazelcast):
 * the same class name, the same four fields, and Concursus's computed serialVersionUID declared,
 * so that Java writes the bytes Concursus's filter writes. Test fixture of concursus-lab.
 */
final class SerializableEventIdentity implements Serializable {
    private static final long serialVersionUID = 5721940847776016960L;

    private final String aggregateType;
    private final String aggregateId;
    private final Instant eventTimestamp;
    private final String streamId;

    SerializableEventIdentity(String type, String id, Instant at, String stream) {
        aggregateType = type;
        aggregateId = id;
        eventTimestamp = at;
        streamId = stream;
    }

    @Override
    public boolean equals(Object other) {
        if (!(other instanceof SerializableEventIdentity)) {
            return false;
        }
        SerializableEventIdentity that = (SerializableEventIdentity) other;
        return aggregateType.equals(that.aggregateType) && aggregateId.equals(that.aggregateId)
                && eventTimestamp.equals(that.eventTimestamp) && streamId.equals(that.streamId);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(aggregateType, aggregateId, eventTimestamp, streamId);
    }
}
