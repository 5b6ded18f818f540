package lab.pekko;

import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;

import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/** A shopping cart whose events Pekko writes as JSON (jackson-json). */
public final class Cart extends EventSourcedBehavior<Cart.Command, Cart.Event, Cart.State> {

  public interface Command {}

  /** Several items at once: one persistAll, so consecutive sequence numbers in one batch. */
  public record AddItems(List<ItemAdded> items, ActorRef<Done> replyTo) implements Command {}

  public record Remove(ItemRemoved event, ActorRef<Done> replyTo) implements Command {}

  public record Checkout(CheckedOut event, ActorRef<Done> replyTo) implements Command {}

  public record Get(ActorRef<State> replyTo) implements Command {}

  public interface Event extends JsonSerializable {}

  public record ItemAdded(String itemId, int quantity, Instant at, String note) implements Event {}

  /** Written at version 2 (a Jackson migration): its manifest ends in "#2". */
  public record ItemRemoved(String itemId, Instant at) implements Event {}

  public record CheckedOut(Instant at) implements Event {}

  /** The state Pekko recovers: quantities by item, whether checked out, events applied. */
  public record State(TreeMap<String, Integer> items, boolean checkedOut, long events)
      implements JsonSerializable {}

  public Cart(PersistenceId id) {
    super(id);
  }

  @Override
  public State emptyState() {
    return new State(new TreeMap<>(), false, 0);
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(AddItems.class, (s, c) -> Effect().persist(List.<Event>copyOf(c.items()))
            .thenReply(c.replyTo(), x -> Done.getInstance()))
        .onCommand(Remove.class, (s, c) -> Effect().persist((Event) c.event())
            .thenReply(c.replyTo(), x -> Done.getInstance()))
        .onCommand(Checkout.class, (s, c) -> Effect().persist((Event) c.event())
            .thenReply(c.replyTo(), x -> Done.getInstance()))
        .onCommand(Get.class, (s, c) -> Effect().reply(c.replyTo(), s))
        .build();
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(ItemAdded.class, (s, e) -> {
          TreeMap<String, Integer> items = new TreeMap<>(s.items());
          items.merge(e.itemId(), e.quantity(), Integer::sum);
          return new State(items, s.checkedOut(), s.events() + 1);
        })
        .onEvent(ItemRemoved.class, (s, e) -> {
          TreeMap<String, Integer> items = new TreeMap<>(s.items());
          items.remove(e.itemId());
          return new State(items, s.checkedOut(), s.events() + 1);
        })
        .onEvent(CheckedOut.class, (s, e) -> new State(s.items(), true, s.events() + 1))
        .build();
  }

  @Override
  public Set<String> tagsFor(Event event) {
    return Set.of("cart");
  }
}
