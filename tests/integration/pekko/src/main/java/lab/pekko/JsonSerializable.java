package lab.pekko;

/** Marker: serialized by pekko-serialization-jackson as JSON (jackson-json, id 31). */
public interface JsonSerializable {}
