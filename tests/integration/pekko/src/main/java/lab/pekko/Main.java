package lab.pekko;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;

import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.persistence.typed.PersistenceId;

/**
 * Writes a deterministic history through Pekko's own Cassandra journal, then recovers every
 * entity in a fresh actor system and prints its state.
 *
 * <p>Usage: {@code Main <host> <port> <keyspace>}. Prints {@code STATE <persistenceId> <json>}
 * per entity, then {@code DONE}.
 */
public final class Main {

  static final Instant BASE = Instant.parse("2026-03-01T09:00:00Z");
  static final Duration TIMEOUT = Duration.ofSeconds(180);

  static Instant at(int minutes) {
    return BASE.plus(Duration.ofMinutes(minutes));
  }

  static Config config(String host, String port, String keyspace) {
    return ConfigFactory.parseString(String.join("\n",
        "pekko.loglevel = WARNING",
        "pekko.actor.allow-java-serialization = on",
        "pekko.actor.warn-about-java-serializer-usage = off",
        "pekko.actor.serializers.opaque = \"lab.pekko.OpaqueSerializer\"",
        "pekko.actor.serialization-bindings {",
        "  \"lab.pekko.JsonSerializable\" = jackson-json",
        "  \"lab.pekko.CborSerializable\" = jackson-cbor",
        "  \"lab.pekko.Legacy$Imported\" = java",
        "  \"lab.pekko.Legacy$Sealed\" = opaque",
        "}",
        // CBOR payloads over 32 KiB stored LZ4-compressed (JSON's are gzip by default)
        "pekko.serialization.jackson.jackson-cbor.compression.algorithm = lz4",
        "pekko.serialization.jackson.jackson-cbor.compression.compress-larger-than = 32 KiB",
        "pekko.serialization.jackson.migrations {",
        "  \"lab.pekko.Cart$ItemRemoved\" = \"lab.pekko.ItemRemovedMigration\"",
        "}",
        "pekko.persistence.journal.plugin = \"pekko.persistence.cassandra.journal\"",
        "pekko.persistence.snapshot-store.plugin = \"pekko.persistence.cassandra.snapshot\"",
        "pekko.persistence.cassandra.journal.keyspace = \"" + keyspace + "\"",
        "pekko.persistence.cassandra.journal.keyspace-autocreate = true",
        "pekko.persistence.cassandra.journal.tables-autocreate = true",
        // small partitions, so that entities span several partition_nr values
        "pekko.persistence.cassandra.journal.target-partition-size = 5",
        "pekko.persistence.cassandra.snapshot.keyspace = \"" + keyspace + "\"",
        "pekko.persistence.cassandra.snapshot.keyspace-autocreate = true",
        "pekko.persistence.cassandra.snapshot.tables-autocreate = true",
        "pekko.persistence.cassandra.events-by-tag.enabled = true",
        // the first use makes the keyspace and tables: slow on a small, busy machine
        "pekko.persistence.cassandra.journal.circuit-breaker.call-timeout = 120s",
        "pekko.persistence.cassandra.journal.recovery-event-timeout = 120s",
        "pekko.persistence.cassandra.snapshot.circuit-breaker.call-timeout = 120s",
        "datastax-java-driver.basic.contact-points = [\"" + host + ":" + port + "\"]",
        "datastax-java-driver.basic.load-balancing-policy.local-datacenter = datacenter1",
        "datastax-java-driver.advanced.reconnect-on-init = true",
        "datastax-java-driver.basic.request.timeout = 30s"))
        .withFallback(ConfigFactory.load());
  }

  record Entities(Map<String, ActorRef<Cart.Command>> carts,
                  Map<String, ActorRef<Account.Command>> accounts,
                  Map<String, ActorRef<Legacy.Command>> legacies) {}

  static final List<PersistenceId> CARTS = List.of(
      PersistenceId.of("ShoppingCart", "cart-001"),
      PersistenceId.of("ShoppingCart", "cart-002"),
      PersistenceId.of("ShoppingCart", "cart-003"),
      PersistenceId.of("ShoppingCart", "cart-004"),
      PersistenceId.ofUniqueId("solo-cart"));
  static final List<PersistenceId> ACCOUNTS = List.of(
      PersistenceId.of("Account", "acc-1"), PersistenceId.of("Account", "acc-2"));
  static final List<PersistenceId> LEGACIES = List.of(PersistenceId.of("Legacy", "old-1"));

  static Entities spawn(ActorSystem<Void> system) {
    Map<String, ActorRef<Cart.Command>> carts = new LinkedHashMap<>();
    for (PersistenceId id : CARTS) {
      carts.put(id.id(), system.systemActorOf(new Cart(id), "c-" + carts.size(), emptyProps()));
    }
    Map<String, ActorRef<Account.Command>> accounts = new LinkedHashMap<>();
    for (PersistenceId id : ACCOUNTS) {
      accounts.put(id.id(), system.systemActorOf(new Account(id), "a-" + accounts.size(), emptyProps()));
    }
    Map<String, ActorRef<Legacy.Command>> legacies = new LinkedHashMap<>();
    for (PersistenceId id : LEGACIES) {
      legacies.put(id.id(), system.systemActorOf(new Legacy(id), "l-" + legacies.size(), emptyProps()));
    }
    return new Entities(carts, accounts, legacies);
  }

  static org.apache.pekko.actor.typed.Props emptyProps() {
    return org.apache.pekko.actor.typed.Props.empty();
  }

  static <C, R> R ask(ActorSystem<Void> system, ActorRef<C> to, Function<ActorRef<R>, C> message)
      throws Exception {
    CompletionStage<R> reply = AskPattern.ask(to, message::apply, TIMEOUT, system.scheduler());
    return reply.toCompletableFuture().get();
  }

  static Cart.ItemAdded added(String item, int quantity, Instant at) {
    return new Cart.ItemAdded(item, quantity, at, "");
  }

  static void addItems(ActorSystem<Void> system, ActorRef<Cart.Command> cart,
                       Cart.ItemAdded... items) throws Exception {
    ask(system, cart, (ActorRef<Done> r) -> new Cart.AddItems(List.of(items), r));
  }

  static void remove(ActorSystem<Void> system, ActorRef<Cart.Command> cart, String item, Instant at)
      throws Exception {
    ask(system, cart, (ActorRef<Done> r) -> new Cart.Remove(new Cart.ItemRemoved(item, at), r));
  }

  static void checkout(ActorSystem<Void> system, ActorRef<Cart.Command> cart, Instant at)
      throws Exception {
    ask(system, cart, (ActorRef<Done> r) -> new Cart.Checkout(new Cart.CheckedOut(at), r));
  }

  static void account(ActorSystem<Void> system, ActorRef<Account.Command> to, Account.Event... events)
      throws Exception {
    ask(system, to, (ActorRef<Done> r) -> new Account.Apply(List.of(events), r));
  }

  static void legacy(ActorSystem<Void> system, ActorRef<Legacy.Command> to, Object... events)
      throws Exception {
    ask(system, to, (ActorRef<Done> r) -> new Legacy.Apply(List.of(events), r));
  }

  /** The history: the same commands in the same order on every run. */
  static void write(ActorSystem<Void> system, Entities e) throws Exception {
    ActorRef<Cart.Command> c1 = e.carts().get("ShoppingCart|cart-001");
    addItems(system, c1, added("bread", 1, at(0)), added("milk", 2, at(0)),
        added("crème brûlée", 1, at(0)));
    remove(system, c1, "milk", at(1));
    addItems(system, c1, added("eggs", 12, at(2).plusNanos(123_456_789)));
    checkout(system, c1, at(3));

    ActorRef<Cart.Command> c2 = e.carts().get("ShoppingCart|cart-002");
    String big = "A long gift message. ".repeat(2000); // over 32 KiB: stored gzip-compressed
    addItems(system, c2, new Cart.ItemAdded("card", 1, at(0), big));
    addItems(system, c2, added("tea", 1, at(1)),
        new Cart.ItemAdded("say \"hi\" \\ \t 🎉", 2, at(1), "ünïcode"));

    ActorRef<Cart.Command> c3 = e.carts().get("ShoppingCart|cart-003");
    for (int i = 0; i < 12; i++) {
      addItems(system, c3, added("item-" + (i % 4), i + 1, at(i)));
      if (i % 5 == 4) {
        remove(system, c3, "item-" + (i % 3), at(i));
      }
    }

    ActorRef<Cart.Command> c4 = e.carts().get("ShoppingCart|cart-004");
    addItems(system, c4, added("a", 1, at(5)), added("b", 2, at(5)), added("c", 3, at(5)),
        added("d", 4, at(5)));

    ActorRef<Cart.Command> solo = e.carts().get("solo-cart");
    addItems(system, solo, added("pen", 3, at(7)));
    checkout(system, solo, at(8));

    ActorRef<Account.Command> a1 = e.accounts().get("Account|acc-1");
    account(system, a1, new Account.Opened("alice", at(0)));
    account(system, a1, new Account.Deposited(1000, at(1), "salary", 0.015),
        new Account.Deposited(250, at(1), "bonus €", 0.1));
    account(system, a1, new Account.Withdrawn(300, at(2)));
    account(system, a1, new Account.Deposited(5, at(3), "", 1e-7));
    account(system, a1, new Account.Closed(at(4)));

    ActorRef<Account.Command> a2 = e.accounts().get("Account|acc-2");
    account(system, a2, new Account.Opened("bob", at(0)),
        new Account.Deposited(99_999_999_999L, at(1), "big", 2.5));
    String memo = "a memo that goes on and on; ".repeat(1500); // over 32 KiB: LZ4
    account(system, a2, new Account.Deposited(1, at(2), memo, 0.5));

    ActorRef<Legacy.Command> l1 = e.legacies().get("Legacy|old-1");
    legacy(system, l1, new Legacy.Renamed("first"));
    legacy(system, l1, new Legacy.Imported("csv", 42));
    legacy(system, l1, new Legacy.Sealed("s3cret"));
    legacy(system, l1, "a plain string event");
    legacy(system, l1, (Object) new byte[] {1, 2, 3});
    legacy(system, l1, new Legacy.Renamed("second"));
  }

  /** Every entity recovered by Pekko from the journal, its state printed as JSON. */
  static void recover(ActorSystem<Void> system, Entities e) throws Exception {
    ObjectMapper json = JsonMapper.builder()
        .enable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
        .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
        .build();
    List<String> lines = new ArrayList<>();
    for (var entry : e.carts().entrySet()) {
      Cart.State s = ask(system, entry.getValue(), (ActorRef<Cart.State> r) -> new Cart.Get(r));
      lines.add("STATE " + entry.getKey() + " " + json.writeValueAsString(s));
    }
    for (var entry : e.accounts().entrySet()) {
      Account.State s =
          ask(system, entry.getValue(), (ActorRef<Account.State> r) -> new Account.Get(r));
      lines.add("STATE " + entry.getKey() + " " + json.writeValueAsString(s));
    }
    for (var entry : e.legacies().entrySet()) {
      Legacy.State s =
          ask(system, entry.getValue(), (ActorRef<Legacy.State> r) -> new Legacy.Get(r));
      lines.add("STATE " + entry.getKey() + " " + json.writeValueAsString(s));
    }
    lines.forEach(System.out::println);
  }

  public static void main(String[] args) throws Exception {
    Config config = config(args[0], args[1], args[2]);
    Behavior<Void> root = Behaviors.empty();
    ActorSystem<Void> writer = ActorSystem.create(root, "writer", config);
    try {
      write(writer, spawn(writer));
    } finally {
      writer.terminate();
      writer.getWhenTerminated().toCompletableFuture().get();
    }
    ActorSystem<Void> reader = ActorSystem.create(root, "reader", config);
    try {
      recover(reader, spawn(reader));
    } finally {
      reader.terminate();
      reader.getWhenTerminated().toCompletableFuture().get();
    }
    System.out.println("DONE");
    System.exit(0);
  }
}
