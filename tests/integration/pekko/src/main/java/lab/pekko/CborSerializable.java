package lab.pekko;

/** Marker: serialized by pekko-serialization-jackson as CBOR (jackson-cbor). */
public interface CborSerializable {}
