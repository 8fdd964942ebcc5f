package dev.runlink.spark.plan;

import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import scala.Option;

/**
 * Stand-ins for Spark plan nodes: PlanInspector reads plans by simple class name and member name only, so
 * these classes drive it through the shapes of Spark 3.5 and 4.x, DataSource V2 writes included (which a
 * local Spark without a V2 catalog cannot produce). Real plans are checked by the spark-submit tests.
 */
public final class FakePlans {
    private FakePlans() {}

    public static class Node {
        private final List<Object> children;

        Node(Object... children) {
            this.children = Arrays.asList(children);
        }

        public List<Object> children() {
            return children;
        }

        @Override
        public String toString() {
            StringBuilder out = new StringBuilder(getClass().getSimpleName());
            for (Object child : children) {
                out.append("\n+- ").append(child.toString().replace("\n", "\n   "));
            }
            return out.toString();
        }
    }

    public static class Metric {
        private final long value;

        Metric(long value) {
            this.value = value;
        }

        public long value() {
            return value;
        }
    }

    /** Scala Map's get(key): Option. */
    public static class Metrics {
        private final Map<String, Metric> values = new HashMap<>();

        Metrics(Object... kv) {
            for (int i = 0; i < kv.length; i += 2) {
                values.put((String) kv[i], new Metric(((Number) kv[i + 1]).longValue()));
            }
        }

        public Option<Metric> get(Object key) {
            return Option.apply(values.get(key));
        }
    }

    public static class DataType {
        private final String name;

        DataType(String name) {
            this.name = name;
        }

        public String catalogString() {
            return name;
        }
    }

    public static class Field {
        private final String name;
        private final String type;

        Field(String name, String type) {
            this.name = name;
            this.type = type;
        }

        public String name() {
            return name;
        }

        public DataType dataType() {
            return new DataType(type);
        }

        public boolean nullable() {
            return true;
        }
    }

    public static class Schema {
        private final Field[] fields;

        Schema(Field... fields) {
            this.fields = fields;
        }

        public Field[] fields() {
            return fields;
        }
    }

    static Schema schema(int columns) {
        Field[] fields = new Field[columns];
        for (int i = 0; i < columns; i++) {
            fields[i] = new Field("c" + i, i == 0 ? "bigint" : "string");
        }
        return new Schema(fields);
    }

    public static class FileIndex {
        private final String path;

        FileIndex(String path) {
            this.path = path;
        }

        public List<String> rootPaths() {
            return Collections.singletonList(path);
        }
    }

    public static class ParquetFileFormat {
        public String shortName() {
            return "parquet";
        }
    }

    public static class HadoopFsRelation {
        private final String path;

        HadoopFsRelation(String path) {
            this.path = path;
        }

        public FileIndex location() {
            return new FileIndex(path);
        }

        public ParquetFileFormat fileFormat() {
            return new ParquetFileFormat();
        }

        public Schema schema() {
            return FakePlans.schema(3);
        }
    }

    public static class TableIdentifier {
        private final String name;

        TableIdentifier(String name) {
            this.name = name;
        }

        public String unquotedString() {
            return name;
        }
    }

    public static class FileSourceScanExec extends Node {
        private final String path;
        private final long rows;

        FileSourceScanExec(String path, long rows) {
            this.path = path;
            this.rows = rows;
        }

        public HadoopFsRelation relation() {
            return new HadoopFsRelation(path);
        }

        public Option<TableIdentifier> tableIdentifier() {
            return Option.empty();
        }

        public Metrics metrics() {
            return new Metrics("numOutputRows", rows, "numFiles", 2, "filesSize", 5000);
        }
    }

    public static class WholeStageCodegenExec extends Node {
        WholeStageCodegenExec(Object... children) {
            super(children);
        }
    }

    public static class SortMergeJoinExec extends Node {
        SortMergeJoinExec(Object... children) {
            super(children);
        }
    }

    public static class Query extends Node {
        public Schema schema() {
            return FakePlans.schema(2);
        }
    }

    public static class InsertIntoHadoopFsRelationCommand extends Node {
        public String outputPath() {
            return "file:/data/out";
        }

        public Option<Object> catalogTable() {
            return Option.empty();
        }

        public ParquetFileFormat fileFormat() {
            return new ParquetFileFormat();
        }

        public String mode() {
            return "Overwrite";
        }

        public Query query() {
            return new Query();
        }

        public Metrics metrics() {
            return new Metrics("numOutputRows", 42, "numFiles", 1, "numOutputBytes", 1234);
        }
    }

    public static class DataWritingCommandExec extends Node {
        private final Object cmd;

        DataWritingCommandExec(Object cmd, Object child) {
            super(child);
            this.cmd = cmd;
        }

        public Object cmd() {
            return cmd;
        }
    }

    /** Spark 3.4+: a command's physical plan hides behind CommandResultExec. */
    public static class CommandResultExec extends Node {
        private final Object plan;

        CommandResultExec(Object plan) {
            this.plan = plan;
        }

        public Object commandPhysicalPlan() {
            return plan;
        }

        @Override
        public String toString() { // as Spark's tree string, which shows the command's plan
            return "CommandResult\n+- " + plan.toString().replace("\n", "\n   ");
        }
    }

    public static class AdaptiveSparkPlanExec extends Node {
        private final Object plan;

        AdaptiveSparkPlanExec(Object plan) {
            this.plan = plan;
        }

        public Object executedPlan() {
            return plan;
        }

        @Override
        public String toString() {
            return "AdaptiveSparkPlan\n+- " + plan.toString().replace("\n", "\n   ");
        }
    }

    // ---- DataSource V2

    public static class V2Table {
        private final String name;

        V2Table(String name) {
            this.name = name;
        }

        public String name() {
            return name;
        }

        public Map<String, String> properties() {
            return Collections.singletonMap("provider", "iceberg");
        }
    }

    public static class Identifier {
        @Override
        public String toString() {
            return "db.events";
        }
    }

    public static class Catalog {
        public String name() {
            return "lake";
        }
    }

    public static class DataSourceV2Relation extends Node {
        public V2Table table() {
            return new V2Table("lake.db.events");
        }

        public Option<Identifier> identifier() {
            return Option.apply(new Identifier());
        }

        public Option<Catalog> catalog() {
            return Option.apply(new Catalog());
        }

        public Schema schema() {
            return FakePlans.schema(2);
        }
    }

    public static class AppendData extends Node {
        public DataSourceV2Relation table() {
            return new DataSourceV2Relation();
        }

        public Query query() {
            return new Query();
        }
    }

    public static class CommandResult extends Node {
        private final Object logical;

        CommandResult(Object logical) {
            this.logical = logical;
        }

        public Object commandLogicalPlan() {
            return logical;
        }
    }

    public static class AppendDataExec extends Node {
        AppendDataExec(Object child) {
            super(child);
        }

        public Metrics metrics() {
            return new Metrics("numOutputRows", 7);
        }
    }

    /** QueryExecution: the members RunlinkQueryListener reads. */
    public static class QueryExecution {
        private final Object executed;
        private final Object logical;

        QueryExecution(Object executed, Object logical) {
            this.executed = executed;
            this.logical = logical;
        }

        public Object executedPlan() {
            if (executed == null) {
                throw new IllegalStateException("planning failed");
            }
            return executed;
        }

        public Object commandExecuted() {
            return logical;
        }

        public Object analyzed() {
            return logical;
        }
    }

    /** A parquet join written back as parquet, the Spark 3.4+ command shape with adaptive execution. */
    public static QueryExecution v1Write() {
        Object scanA = new FileSourceScanExec("file:/data/a", 100);
        Object scanB = new FileSourceScanExec("file:/data/a", 50); // same source scanned twice
        Object join = new AdaptiveSparkPlanExec(new WholeStageCodegenExec(new SortMergeJoinExec(scanA, scanB)));
        Object write = new DataWritingCommandExec(new InsertIntoHadoopFsRelationCommand(), join);
        return new QueryExecution(new CommandResultExec(write), new CommandResult(new Node()));
    }

    public static QueryExecution v2Append() {
        Object exec = new AppendDataExec(new FileSourceScanExec("file:/data/in", 7));
        return new QueryExecution(new CommandResultExec(exec), new CommandResult(new AppendData()));
    }

    public static QueryExecution failedBeforePlanning() {
        return new QueryExecution(null, new Node(new DataSourceV2Relation()));
    }
}
