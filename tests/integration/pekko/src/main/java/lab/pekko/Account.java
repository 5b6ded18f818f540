package lab.pekko;

import java.time.Instant;
import java.util.List;

import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/** A bank account whose events Pekko writes as CBOR (jackson-cbor); snapshots every 3 events. */
public final class Account extends EventSourcedBehavior<Account.Command, Account.Event, Account.State> {

  public interface Command {}

  public record Apply(List<Event> events, ActorRef<Done> replyTo) implements Command {}

  public record Get(ActorRef<State> replyTo) implements Command {}

  public interface Event extends CborSerializable {}

  public record Opened(String owner, Instant at) implements Event {}

  public record Deposited(long cents, Instant at, String memo, double rate) implements Event {}

  public record Withdrawn(long cents, Instant at) implements Event {}

  public record Closed(Instant at) implements Event {}

  public record State(String owner, long balance, boolean closed, long events)
      implements CborSerializable {}

  public Account(PersistenceId id) {
    super(id);
  }

  @Override
  public State emptyState() {
    return new State(null, 0, false, 0);
  }

  @Override
  public CommandHandler<Command, Event, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(Apply.class, (s, c) -> Effect().persist(c.events())
            .thenReply(c.replyTo(), x -> Done.getInstance()))
        .onCommand(Get.class, (s, c) -> Effect().reply(c.replyTo(), s))
        .build();
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(Opened.class, (s, e) -> new State(e.owner(), 0, false, s.events() + 1))
        .onEvent(Deposited.class,
            (s, e) -> new State(s.owner(), s.balance() + e.cents(), s.closed(), s.events() + 1))
        .onEvent(Withdrawn.class,
            (s, e) -> new State(s.owner(), s.balance() - e.cents(), s.closed(), s.events() + 1))
        .onEvent(Closed.class, (s, e) -> new State(s.owner(), s.balance(), true, s.events() + 1))
        .build();
  }

  @Override
  public boolean shouldSnapshot(State state, Event event, long sequenceNr) {
    return sequenceNr % 3 == 0;
  }
}
