package lab.pekko;

import java.util.List;

import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;

/**
 * An entity of older ways: events serialized by Java serialization (id 1), by a serializer of
 * the application's own (id 9001), and by Pekko's plain string (20) and byte array (4)
 * serializers, beside one JSON event.
 */
public final class Legacy extends EventSourcedBehavior<Legacy.Command, Object, Legacy.State> {

  public interface Command {}

  public record Apply(List<Object> events, ActorRef<Done> replyTo) implements Command {}

  public record Get(ActorRef<State> replyTo) implements Command {}

  /** Java serialization: only the JVM with this class can read it back. */
  public record Imported(String source, int rows) implements java.io.Serializable {}

  /** Written by OpaqueSerializer (id 9001), which no other program knows. */
  public record Sealed(String secret) {}

  public record Renamed(String name) implements JsonSerializable {}

  public record State(long events) implements JsonSerializable {}

  public Legacy(PersistenceId id) {
    super(id);
  }

  @Override
  public State emptyState() {
    return new State(0);
  }

  @Override
  public CommandHandler<Command, Object, State> commandHandler() {
    return newCommandHandlerBuilder()
        .forAnyState()
        .onCommand(Apply.class, (s, c) -> Effect().persist(c.events())
            .thenReply(c.replyTo(), x -> Done.getInstance()))
        .onCommand(Get.class, (s, c) -> Effect().reply(c.replyTo(), s))
        .build();
  }

  @Override
  public EventHandler<State, Object> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onAnyEvent((s, e) -> new State(s.events() + 1));
  }
}
