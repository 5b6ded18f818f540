package lab.pekko;

import java.nio.charset.StandardCharsets;

import org.apache.pekko.serialization.SerializerWithStringManifest;

/** An application's own serializer (id 9001): bytes only this application can read. */
public final class OpaqueSerializer extends SerializerWithStringManifest {
  @Override
  public int identifier() {
    return 9001;
  }

  @Override
  public String manifest(Object o) {
    return "sealed-v1";
  }

  @Override
  public byte[] toBinary(Object o) {
    byte[] text = ((Legacy.Sealed) o).secret().getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[text.length];
    for (int i = 0; i < text.length; i++) {
      out[i] = (byte) (text[i] ^ 0x5a);
    }
    return out;
  }

  @Override
  public Object fromBinary(byte[] bytes, String manifest) {
    byte[] text = new byte[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      text[i] = (byte) (bytes[i] ^ 0x5a);
    }
    return new Legacy.Sealed(new String(text, StandardCharsets.UTF_8));
  }
}
