// Prints the names of the Java producer's settings, one a line, sorted: what
// tests/unit/test_java_settings.py compares aioproducer's table with.
import java.util.TreeSet;
import org.apache.kafka.clients.producer.ProducerConfig;

public class ProducerConfigNames {
    public static void main(String[] args) {
        for (String name : new TreeSet<>(ProducerConfig.configNames())) {
            System.out.println(name);
        }
    }
}
