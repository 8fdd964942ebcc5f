package dev.runlink.spark.plan;

import dev.runlink.spark.protocol.Json;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads a finished query's datasets, row counts and plan summary out of its QueryExecution, by class and member
 * names only: these classes differ between Spark 3.5 and 4.x, so nothing here links against them. Runs on the
 * agent's worker thread, never on Spark's, with caps on the nodes walked and on the sizes reported.
 */
public final class PlanInspector {
    static final int MAX_NODES = 20_000;
    static final int MAX_DATASETS = 100;
    static final int MAX_SCHEMA_FIELDS = 200;
    private static final int MAX_CHILDREN = 10_000;

    private static final Set<String> V2_WRITES = set("AppendData", "OverwriteByExpression",
        "OverwritePartitionsDynamic", "CreateTableAsSelect", "ReplaceTableAsSelect");
    private static final Set<String> V2_WRITE_EXECS = set("AppendDataExec", "AppendDataExecV1",
        "OverwriteByExpressionExec", "OverwriteByExpressionExecV1", "OverwritePartitionsDynamicExec",
        "CreateTableAsSelectExec", "AtomicCreateTableAsSelectExec", "ReplaceTableAsSelectExec",
        "AtomicReplaceTableAsSelectExec", "WriteToDataSourceV2Exec");

    private final List<Map<String, Object>> inputs = new ArrayList<>();
    private final List<Map<String, Object>> outputs = new ArrayList<>();
    private String planSummary;
    private boolean planTruncated;
    private final Map<String, Map<String, Object>> inputsByKey = new LinkedHashMap<>();
    private final List<Object> v2WriteExecs = new ArrayList<>();
    private int visited;

    private PlanInspector() {}

    /** Walks {@code queryExecution}; never throws (what cannot be read stays out of the report). */
    public static PlanInspector inspect(Object queryExecution, int maxPlanChars) {
        PlanInspector report = new PlanInspector();
        Object physical = Reflect.call(queryExecution, "executedPlan");
        if (physical != null) {
            report.walkPhysical(physical);
        }
        // V2 writes name their table in the logical plan only; v1 commands were seen in the physical plan
        Object logical = Reflect.call(queryExecution, "commandExecuted");
        if (logical == null) {
            logical = Reflect.call(queryExecution, "analyzed");
        }
        report.walkLogical(logical, physical == null);
        report.inputs.addAll(report.inputsByKey.values());
        report.summarize(physical != null ? physical : logical, maxPlanChars);
        return report;
    }

    /** The datasets read, one per source (scans of the same source add up), at most MAX_DATASETS. */
    public List<Map<String, Object>> inputs() {
        return inputs;
    }

    /** The datasets written, at most MAX_DATASETS. */
    public List<Map<String, Object>> outputs() {
        return outputs;
    }

    /** The plan's text cut to maxPlanChars; null without a plan or with maxPlanChars 0. */
    public String planSummary() {
        return planSummary;
    }

    /** Whether {@link #planSummary} was cut. */
    public boolean planTruncated() {
        return planTruncated;
    }

    // ---- physical plan

    private void walkPhysical(Object root) {
        for (Object node : nodes(root)) {
            String name = node.getClass().getSimpleName();
            switch (name) {
                case "DataWritingCommandExec":
                    Object cmd = Reflect.call(node, "cmd");
                    addOutput(describeCommand(cmd), cmd);
                    break;
                case "ExecutedCommandExec":
                    addOutput(describeCommand(Reflect.call(node, "cmd")), null);
                    break;
                case "FileSourceScanExec":
                    addInput(fileScan(node), node);
                    break;
                case "BatchScanExec":
                    addInput(batchScan(node), node);
                    break;
                case "RowDataSourceScanExec":
                    addInput(relationDataset(Reflect.call(node, "relation"),
                        Reflect.get(node, "tableIdentifier")), node);
                    break;
                case "HiveTableScanExec":
                    addInput(hiveRelation(Reflect.call(node, "relation")), node);
                    break;
                default:
                    if (V2_WRITE_EXECS.contains(name)) {
                        v2WriteExecs.add(node);
                    }
            }
        }
    }

    /** Children, inner children and the plans that adaptive execution and command results hide. */
    private List<Object> nodes(Object root) {
        List<Object> out = new ArrayList<>();
        Map<Object, Boolean> seen = new IdentityHashMap<>();
        ArrayDeque<Object> todo = new ArrayDeque<>();
        todo.push(root);
        while (!todo.isEmpty() && visited < MAX_NODES) {
            Object node = todo.pop();
            if (node == null || seen.put(node, Boolean.TRUE) != null) {
                continue;
            }
            visited++;
            out.add(node);
            String name = node.getClass().getSimpleName();
            if (name.equals("AdaptiveSparkPlanExec")) {
                todo.push(Reflect.call(node, "executedPlan"));
            } else if (name.endsWith("QueryStageExec")) {
                todo.push(Reflect.call(node, "plan"));
            } else if (name.equals("CommandResultExec")) {
                todo.push(Reflect.call(node, "commandPhysicalPlan"));
            } else if (name.equals("ReusedExchangeExec")) {
                todo.push(Reflect.call(node, "child"));
            }
            for (Object child : Reflect.list(Reflect.call(node, "children"), MAX_CHILDREN)) {
                todo.push(child);
            }
            for (Object child : Reflect.list(Reflect.call(node, "innerChildren"), MAX_CHILDREN)) {
                if (isSparkPlan(child)) {
                    todo.push(child);
                }
            }
        }
        Collections.reverse(out); // leaves first: reads before writes in the report
        return out;
    }

    private static boolean isSparkPlan(Object node) {
        for (Class<?> c = node.getClass(); c != null; c = c.getSuperclass()) {
            if (c.getName().equals("org.apache.spark.sql.execution.SparkPlan")) {
                return true;
            }
        }
        return false;
    }

    private Map<String, Object> fileScan(Object node) {
        Object relation = Reflect.call(node, "relation");
        Map<String, Object> ds = dataset("read");
        ds.put("path", firstPath(Reflect.call(Reflect.call(relation, "location"), "rootPaths")));
        ds.put("table", tableName(Reflect.get(node, "tableIdentifier")));
        ds.put("format", formatName(Reflect.call(relation, "fileFormat")));
        putSchema(ds, Reflect.call(relation, "schema"));
        return ds;
    }

    private Map<String, Object> batchScan(Object node) {
        Object table = Reflect.call(node, "table");
        Object scan = Reflect.call(node, "scan");
        Map<String, Object> ds = dataset("read");
        ds.put("table", Json.cap(Reflect.string(table, "name"), 1000));
        Object fileIndex = Reflect.call(scan, "fileIndex"); // V2 file sources
        if (fileIndex != null) {
            ds.put("path", firstPath(Reflect.call(fileIndex, "rootPaths")));
            ds.remove("table");
        }
        String format = provider(table);
        if (format == null && scan != null) {
            format = scan.getClass().getSimpleName().replaceAll("Scan$", "").toLowerCase(Locale.ROOT);
        }
        ds.put("format", Json.cap(format, 100));
        putSchema(ds, Reflect.call(scan, "readSchema"));
        return ds;
    }

    // ---- commands (v1 writes)

    private Map<String, Object> describeCommand(Object cmd) {
        if (cmd == null) {
            return null;
        }
        String name = cmd.getClass().getSimpleName();
        Map<String, Object> ds = dataset("write");
        switch (name) {
            case "InsertIntoHadoopFsRelationCommand":
                ds.put("path", Json.cap(Reflect.string(cmd, "outputPath"), 4096));
                ds.put("table", tableName(identifier(Reflect.get(cmd, "catalogTable"))));
                ds.put("format", formatName(Reflect.call(cmd, "fileFormat")));
                ds.put("mode", mode(Reflect.call(cmd, "mode")));
                putSchema(ds, Reflect.call(Reflect.call(cmd, "query"), "schema"));
                return ds;
            case "SaveAsV1TableCommand":
            case "CreateDataSourceTableAsSelectCommand":
            case "CreateHiveTableAsSelectCommand":
            case "OptimizedCreateHiveTableAsSelectCommand":
            case "InsertIntoHiveTable": {
                Object table = Reflect.call(cmd, name.startsWith("Insert") ? "table" : "tableDesc");
                if (table == null) {
                    table = Reflect.call(cmd, "table");
                }
                ds.put("table", tableName(Reflect.call(table, "identifier")));
                ds.put("path", Json.cap(Reflect.string(Reflect.call(table, "storage"), "locationUri"), 4096));
                String provider = Reflect.string(table, "provider");
                ds.put("format", Json.cap(provider != null ? provider : "hive", 100));
                Object mode = Reflect.call(cmd, "mode");
                if (mode == null && Reflect.has(cmd, "overwrite")) {
                    mode = Boolean.TRUE.equals(Reflect.call(cmd, "overwrite")) ? "Overwrite" : "Append";
                }
                ds.put("mode", mode(mode));
                putSchema(ds, Reflect.call(Reflect.call(cmd, "query"), "schema"));
                return ds;
            }
            case "SaveIntoDataSourceCommand": {
                Object options = Reflect.call(cmd, "options");
                ds.put("path", Json.cap(str(Reflect.option(Reflect.callWith(options, "get", "path"))), 4096));
                ds.put("table", Json.cap(str(Reflect.option(Reflect.callWith(options, "get", "dbtable"))), 1000));
                ds.put("format", formatName(Reflect.call(cmd, "dataSource")));
                ds.put("mode", mode(Reflect.call(cmd, "mode")));
                putSchema(ds, Reflect.call(Reflect.call(cmd, "query"), "schema"));
                return ds;
            }
            case "InsertIntoDataSourceCommand": {
                Object relation = Reflect.call(cmd, "logicalRelation");
                Map<String, Object> target = relationDataset(Reflect.call(relation, "relation"),
                    identifier(Reflect.get(relation, "catalogTable")));
                target.put("operation", "write");
                target.put("mode", Boolean.TRUE.equals(Reflect.call(cmd, "overwrite")) ? "Overwrite" : "Append");
                return target;
            }
            default:
                return null; // not a write (DDL, SET, ...)
        }
    }

    // ---- logical plan: V2 writes, and reads when there is no physical plan (the query failed early)

    private void walkLogical(Object root, boolean readsToo) {
        if (root == null) {
            return;
        }
        int v2 = 0;
        for (Object node : nodes(root)) {
            String name = node.getClass().getSimpleName();
            if (name.equals("CommandResult")) {
                walkLogical(Reflect.call(node, "commandLogicalPlan"), readsToo);
            } else if (V2_WRITES.contains(name)) {
                Map<String, Object> ds = v2Write(node, name);
                Object exec = v2 < v2WriteExecs.size() ? v2WriteExecs.get(v2++) : null;
                addOutput(ds, exec);
            } else if (readsToo) {
                if (name.equals("LogicalRelation")) {
                    addInput(relationDataset(Reflect.call(node, "relation"),
                        identifier(Reflect.get(node, "catalogTable"))), null);
                } else if (name.equals("DataSourceV2Relation")) {
                    Map<String, Object> ds = dataset("read");
                    ds.put("table", Json.cap(Reflect.string(Reflect.call(node, "table"), "name"), 1000));
                    ds.put("format", Json.cap(provider(Reflect.call(node, "table")), 100));
                    putSchema(ds, Reflect.call(node, "schema"));
                    addInput(ds, null);
                } else if (name.equals("HiveTableRelation")) {
                    addInput(hiveRelation(node), null);
                } else if (isCommandWrite(name)) {
                    addOutput(describeCommand(node), null);
                }
            }
        }
    }

    private static boolean isCommandWrite(String name) {
        return name.startsWith("InsertInto") || name.startsWith("Create") && name.endsWith("AsSelectCommand")
            || name.equals("SaveIntoDataSourceCommand");
    }

    private Map<String, Object> v2Write(Object node, String name) {
        Map<String, Object> ds = dataset("write");
        Object query = Reflect.call(node, "query");
        if (name.endsWith("AsSelect")) {
            Object target = Reflect.call(node, "name"); // ResolvedIdentifier(catalog, identifier)
            Object catalog = Reflect.call(target, "catalog");
            Object ident = Reflect.call(target, "identifier");
            String catalogName = Reflect.string(catalog, "name");
            String identName = ident == null ? Reflect.string(node, "tableName") : ident.toString();
            ds.put("table", Json.cap(join(catalogName, identName), 1000));
            ds.put("format", Json.cap(Reflect.string(Reflect.call(node, "tableSpec"), "provider"), 100));
            ds.put("mode", name.startsWith("Replace") ? "Overwrite" : "ErrorIfExists");
        } else {
            Object relation = Reflect.call(node, "table"); // DataSourceV2Relation
            Object table = Reflect.call(relation, "table");
            String tableName = Reflect.string(table, "name");
            Object ident = Reflect.get(relation, "identifier");
            Object catalog = Reflect.get(relation, "catalog");
            if (ident != null) {
                tableName = join(Reflect.string(catalog, "name"), ident.toString());
            }
            ds.put("table", Json.cap(tableName, 1000));
            ds.put("format", Json.cap(provider(table), 100));
            ds.put("mode", name.equals("AppendData") ? "Append" : "Overwrite");
        }
        putSchema(ds, Reflect.call(query, "schema"));
        return ds;
    }

    // ---- datasets

    private static Map<String, Object> dataset(String operation) {
        Map<String, Object> ds = new LinkedHashMap<>();
        ds.put("operation", operation);
        return ds;
    }

    private Map<String, Object> relationDataset(Object relation, Object tableIdentifier) {
        Map<String, Object> ds = dataset("read");
        if (relation == null) {
            return ds;
        }
        String name = relation.getClass().getSimpleName();
        if (name.equals("HadoopFsRelation")) {
            ds.put("path", firstPath(Reflect.call(Reflect.call(relation, "location"), "rootPaths")));
            ds.put("format", formatName(Reflect.call(relation, "fileFormat")));
        } else if (name.equals("JDBCRelation")) {
            Object options = Reflect.call(relation, "jdbcOptions");
            ds.put("table", Json.cap(Reflect.string(options, "tableOrQuery"), 1000));
            ds.put("format", "jdbc");
        } else {
            ds.put("format", Json.cap(name.replaceAll("Relation$", "").toLowerCase(Locale.ROOT), 100));
        }
        String table = tableName(tableIdentifier);
        if (table != null) {
            ds.put("table", table);
        }
        putSchema(ds, Reflect.call(relation, "schema"));
        return ds;
    }

    private Map<String, Object> hiveRelation(Object relation) {
        Object meta = Reflect.call(relation, "tableMeta");
        Map<String, Object> ds = dataset("read");
        ds.put("table", tableName(Reflect.call(meta, "identifier")));
        ds.put("path", Json.cap(Reflect.string(Reflect.call(meta, "storage"), "locationUri"), 4096));
        ds.put("format", "hive");
        putSchema(ds, Reflect.call(meta, "schema"));
        return ds;
    }

    /** Counts come from the SQL metrics of the node that read or wrote. */
    private void addInput(Map<String, Object> ds, Object node) {
        if (ds == null) {
            return;
        }
        putCounts(ds, node, "numOutputRows", "filesSize");
        String key = ds.get("path") + "|" + ds.get("table") + "|" + ds.get("format");
        Map<String, Object> seen = inputsByKey.get(key);
        if (seen == null) {
            if (inputsByKey.size() < MAX_DATASETS) {
                inputsByKey.put(key, ds);
            }
        } else { // the same source scanned twice (self-join, union): the rows read add up
            for (String counter : new String[] {"rows", "bytes", "files"}) {
                seen.put(counter, add(seen.get(counter), ds.get(counter)));
            }
        }
    }

    private void addOutput(Map<String, Object> ds, Object metricsHolder) {
        if (ds == null || outputs.size() >= MAX_DATASETS) {
            return;
        }
        putCounts(ds, metricsHolder, "numOutputRows", "numOutputBytes");
        outputs.add(ds);
    }

    private static void putCounts(Map<String, Object> ds, Object node, String rowsMetric, String bytesMetric) {
        Object metrics = Reflect.call(node, "metrics");
        ds.put("rows", metric(metrics, rowsMetric));
        ds.put("bytes", metric(metrics, bytesMetric));
        ds.put("files", metric(metrics, "numFiles"));
    }

    private static Long metric(Object metrics, String name) {
        if (metrics == null) {
            return null;
        }
        Object sqlMetric = Reflect.option(Reflect.callWith(metrics, "get", name));
        return Reflect.number(sqlMetric, "value");
    }

    private static Long add(Object a, Object b) {
        if (a == null) {
            return (Long) b;
        }
        return b == null ? (Long) a : (Long) a + (Long) b;
    }

    static void putSchema(Map<String, Object> ds, Object structType) {
        Object fields = Reflect.call(structType, "fields");
        if (!(fields instanceof Object[])) {
            return;
        }
        Object[] all = (Object[]) fields;
        List<Map<String, Object>> schema = new ArrayList<>();
        for (int i = 0; i < all.length && i < MAX_SCHEMA_FIELDS; i++) {
            Map<String, Object> field = new LinkedHashMap<>();
            field.put("name", Json.cap(Reflect.string(all[i], "name"), 1000));
            field.put("type", Json.cap(Reflect.string(Reflect.call(all[i], "dataType"), "catalogString"), 4000));
            Object nullable = Reflect.call(all[i], "nullable");
            field.put("nullable", nullable instanceof Boolean ? nullable : null);
            if (field.get("name") != null && field.get("type") != null) {
                schema.add(field);
            }
        }
        ds.put("schema", schema);
        ds.put("schema_truncated", all.length > MAX_SCHEMA_FIELDS);
    }

    private static String firstPath(Object rootPaths) {
        List<Object> paths = Reflect.list(rootPaths, 2);
        if (paths.isEmpty()) {
            return null;
        }
        // several roots (partition paths, globs): the first one names the dataset
        return Json.cap(paths.get(0).toString(), 4096);
    }

    private static Object identifier(Object catalogTable) {
        return Reflect.call(catalogTable, "identifier");
    }

    private static String tableName(Object tableIdentifier) {
        if (tableIdentifier == null) {
            return null;
        }
        String name = Reflect.string(tableIdentifier, "unquotedString");
        return Json.cap(name != null ? name : tableIdentifier.toString(), 1000);
    }

    /** "parquet" for ParquetFileFormat, and any DataSourceRegister's short name. */
    private static String formatName(Object format) {
        if (format == null) {
            return null;
        }
        String shortName = Reflect.string(format, "shortName");
        if (shortName == null) {
            shortName = format.getClass().getSimpleName().replaceAll("(FileFormat|Provider|Source|\\$)+$", "")
                .toLowerCase(Locale.ROOT);
        }
        return Json.cap(shortName, 100);
    }

    private static String provider(Object table) {
        Object props = Reflect.call(table, "properties"); // java.util.Map in the V2 Table API
        if (props instanceof Map) {
            Object provider = ((Map<?, ?>) props).get("provider");
            return provider == null ? null : provider.toString();
        }
        return null;
    }

    private static String mode(Object saveMode) {
        return saveMode == null ? null : Json.cap(saveMode.toString(), 100);
    }

    private static String join(String catalog, String name) {
        if (name == null) {
            return null;
        }
        return catalog == null || name.startsWith(catalog + ".") ? name : catalog + "." + name;
    }

    private void summarize(Object plan, int maxChars) {
        if (plan == null || maxChars <= 0) {
            return;
        }
        String text = String.valueOf(plan);
        planTruncated = text.length() > maxChars;
        planSummary = Json.cap(text, maxChars);
    }

    public static Map<String, Object> error(Throwable error) {
        if (error == null) {
            return null;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("type", Json.cap(error.getClass().getName(), 500));
        out.put("message", Json.cap(error.getMessage(), 65_536));
        StringWriter trace = new StringWriter();
        error.printStackTrace(new PrintWriter(trace));
        out.put("traceback", Json.cap(trace.toString(), 65_536));
        return out;
    }

    private static String str(Object value) {
        return value == null ? null : value.toString();
    }

    private static Set<String> set(String... names) {
        return new java.util.HashSet<>(java.util.Arrays.asList(names));
    }
}
