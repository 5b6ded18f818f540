package com.opencredo.concursus.hazelcast.events;

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.AbstractMap;

/**
 * What Concursus's IdempotentEventFilter does, through the Java client of a real member.
 *
 * <p>Usage: {@code FillWindow <host:port> <map> <mode> [ttlSeconds]}, one identity per stdin line
 * (aggregate type, aggregate id, event time in epoch milliseconds, stream id; tab-separated).
 * Modes: {@code offer} configures the map's time to live as Concursus's configureCache does
 * (here as dynamic config, from a client) and prints, per line, {@code passed} when
 * {@code putIfAbsent(identity, true)} found no entry, else {@code stopped}; {@code contains}
 * prints {@code true} or {@code false} per line; {@code foreign} puts two keys of other
 * classes. Test fixture of concursus-lab.
 */
public final class FillWindow {
    public static void main(String[] args) throws Exception {
        ClientConfig config = new ClientConfig();
        config.setClusterName("dev");
        config.getNetworkConfig().addAddress(args[0]);
        HazelcastInstance client = HazelcastClient.newHazelcastClient(config);
        try {
            String mode = args[2];
            if (mode.equals("offer") && args.length > 3) {
                client.getConfig().addMapConfig(
                        new MapConfig(args[1]).setTimeToLiveSeconds(Integer.parseInt(args[3])));
            }
            IMap<Object, Boolean> window = client.getMap(args[1]);
            if (mode.equals("foreign")) {
                // one with a Hazelcast serializer of its own, one with Java serialization
                window.put(new AbstractMap.SimpleEntry<>("order", "o-1"), true);
                window.put(java.net.URI.create("urn:order:o-1"), true);
                return;
            }
            BufferedReader in = new BufferedReader(
                    new InputStreamReader(System.in, StandardCharsets.UTF_8));
            StringBuilder out = new StringBuilder();
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                String[] f = line.split("\t", -1);
                Object key = new SerializableEventIdentity(
                        f[0], f[1], Instant.ofEpochMilli(Long.parseLong(f[2])), f[3]);
                if (mode.equals("offer")) {
                    out.append(window.putIfAbsent(key, true) == null ? "passed" : "stopped");
                } else {
                    out.append(window.containsKey(key));
                }
                out.append('\n');
            }
            System.out.print(out);
        } finally {
            client.shutdown();
        }
    }
}
