package phashdb.testhadoop;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.mapreduce.v2.MiniMRYarnCluster;
import org.apache.hadoop.util.VersionInfo;

/**
 * A real Hadoop on loopback, in one JVM, for the tests: HDFS (a NameNode and N DataNodes,
 * WebHDFS on) and YARN (a ResourceManager, one NodeManager with the MapReduce shuffle, and a
 * job history server), from Hadoop's own MiniDFSCluster and MiniMRYarnCluster.
 *
 * <p>Once ready it writes DIR/conf (core-site, hdfs-site, yarn-site, mapred-site: what a client
 * needs, as HADOOP_CONF_DIR) and then DIR/cluster.json (atomically). SIGTERM stops it cleanly.
 *
 * <pre>HadoopCluster DIR --lib LIBDIR [--datanodes 3] [--replication 2] [--nm-memory-mb 4096]</pre>
 *
 * The map and reduce tasks run in YARN containers: separate JVMs the NodeManager starts, whose
 * classpath is DIR/conf plus LIBDIR (the same jars), and which may start Python (streaming).
 */
public final class HadoopCluster {
  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable t) {
      // The mini clusters' non-daemon threads would keep a failed start alive.
      t.printStackTrace();
      System.exit(1);
    }
  }

  private static void run(String[] args) throws Exception {
    if (args.length < 1) {
      System.err.println("usage: HadoopCluster DIR --lib LIBDIR [--datanodes N] [--replication R]"
          + " [--nm-memory-mb MB]");
      System.exit(2);
    }
    File dir = new File(args[0]).getAbsoluteFile();
    String lib = null;
    int datanodes = 3;
    int replication = 2;
    int nmMemory = 4096;
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--lib": lib = new File(args[++i]).getAbsolutePath(); break;
        case "--datanodes": datanodes = Integer.parseInt(args[++i]); break;
        case "--replication": replication = Integer.parseInt(args[++i]); break;
        case "--nm-memory-mb": nmMemory = Integer.parseInt(args[++i]); break;
        default: throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (lib == null) {
      throw new IllegalArgumentException("--lib LIBDIR (the Hadoop jars) is required");
    }
    long t0 = System.nanoTime();
    File data = new File(dir, "data");
    File confDir = new File(dir, "conf");
    confDir.mkdirs();

    Configuration conf = new Configuration();
    conf.set("hadoop.tmp.dir", new File(data, "tmp").getPath());
    conf.setInt("dfs.replication", replication);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    // Permissions stay on (as in production); the tests' user owns everything anyway.
    MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf, new File(data, "dfs"))
        .numDataNodes(datanodes)
        .format(true)
        .build();
    dfs.waitActive();
    String fsUri = "hdfs://127.0.0.1:" + dfs.getNameNodePort();

    Configuration yarnConf = new Configuration(conf);
    yarnConf.set("fs.defaultFS", fsUri);
    yarnConf.set("yarn.app.mapreduce.am.staging-dir", "/tmp/hadoop-yarn/staging");
    yarnConf.setInt("yarn.scheduler.minimum-allocation-mb", 256);
    yarnConf.setInt("yarn.scheduler.maximum-allocation-mb", nmMemory);
    yarnConf.setInt("yarn.nodemanager.resource.memory-mb", nmMemory);
    // Two cores: containers are sized by memory; virtual memory (a JVM reserves far more
    // address space than it uses) is not checked, physical memory is.
    yarnConf.setBoolean("yarn.nodemanager.vmem-check-enabled", false);
    // A shared test machine's disk may be fuller than the 90% that marks a node unhealthy.
    yarnConf.setFloat(
        "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", 99.5f);
    // The NodeManager reports finished containers (and gets new ones) on its heartbeat: every
    // second by default, which a small job waits for several times.
    yarnConf.setInt("yarn.resourcemanager.nodemanagers.heartbeat-interval-ms", 250);
    // Keep the containers' logs and folders a little while after a job: failures are readable.
    yarnConf.setInt("yarn.nodemanager.delete.debug-delay-sec", 600);
    MiniMRYarnCluster yarn = new MiniMRYarnCluster("phashdb-yarn", 1);
    // MiniYARNCluster puts its folders under ./target/NAME: the JVM runs in DIR (cluster.sh).
    yarn.init(yarnConf);
    yarn.start();
    // Ready means a job can get containers: the NodeManager has registered.
    if (!yarn.waitForNodeManagersToConnect(120_000)) {
      throw new IllegalStateException("the NodeManager did not register with the ResourceManager");
    }
    Configuration live = yarn.getConfig();

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      System.err.println("HadoopCluster: shutting down");
      try {
        yarn.stop();
      } catch (Exception e) {
        e.printStackTrace();
      }
      try {
        dfs.shutdown();
      } catch (Exception e) {
        e.printStackTrace();
      }
      stopped.countDown();
    }));

    String confPath = confDir.getAbsolutePath();
    Map<String, String> core = new LinkedHashMap<>();
    core.put("fs.defaultFS", fsUri);
    writeSite(new File(confDir, "core-site.xml"), core);

    Map<String, String> hdfs = new LinkedHashMap<>();
    hdfs.put("dfs.replication", Integer.toString(replication));
    hdfs.put("dfs.namenode.http-address", "127.0.0.1:" + dfs.getNameNode().getHttpAddress().getPort());
    writeSite(new File(confDir, "hdfs-site.xml"), hdfs);

    Map<String, String> yarnSite = new LinkedHashMap<>();
    for (String key : new String[] {
        "yarn.resourcemanager.address", "yarn.resourcemanager.scheduler.address",
        "yarn.resourcemanager.webapp.address", "yarn.resourcemanager.admin.address",
        "yarn.resourcemanager.resource-tracker.address"}) {
      yarnSite.put(key, live.get(key));
    }
    yarnSite.put("yarn.scheduler.minimum-allocation-mb", "256");
    yarnSite.put("yarn.scheduler.maximum-allocation-mb", Integer.toString(nmMemory));
    yarnSite.put("yarn.application.classpath", confPath + "," + lib + "/*");
    writeSite(new File(confDir, "yarn-site.xml"), yarnSite);

    // The JDK 17 module opens Hadoop's own scripts pass, for the containers' JVMs too.
    String jdkFlags = String.join(" ",
        "-Djava.net.preferIPv4Stack=true -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "--add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED",
        "--add-opens java.base/java.util.concurrent=ALL-UNNAMED",
        "--add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.net=ALL-UNNAMED",
        "--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens java.base/java.lang.reflect=ALL-UNNAMED");
    Map<String, String> mapred = new LinkedHashMap<>();
    mapred.put("mapreduce.framework.name", "yarn");
    mapred.put("mapreduce.jobhistory.address", live.get("mapreduce.jobhistory.address"));
    mapred.put("mapreduce.jobhistory.webapp.address", live.get("mapreduce.jobhistory.webapp.address"));
    mapred.put("yarn.app.mapreduce.am.staging-dir", "/tmp/hadoop-yarn/staging");
    mapred.put("mapreduce.application.classpath", confPath + "," + lib + "/*");
    // Small containers: the 4 GB NodeManager runs the application master and three tasks.
    // A map task is a JVM plus the Python it streams to (decoding images): 1 GB in all.
    mapred.put("yarn.app.mapreduce.am.resource.mb", "512");
    mapred.put("yarn.app.mapreduce.am.command-opts", "-Xmx384m " + jdkFlags);
    mapred.put("mapreduce.map.memory.mb", "1024");
    mapred.put("mapreduce.map.java.opts", "-Xmx256m " + jdkFlags);
    mapred.put("mapreduce.reduce.memory.mb", "768");
    mapred.put("mapreduce.reduce.java.opts", "-Xmx384m " + jdkFlags);
    mapred.put("mapreduce.task.io.sort.mb", "64");
    mapred.put("mapreduce.job.ubertask.enable", "false");
    // The application master asks for containers (and learns of finished ones) every second
    // by default; the client polls for the job's progress every second.
    mapred.put("yarn.app.mapreduce.am.scheduler.heartbeat.interval-ms", "250");
    mapred.put("mapreduce.client.progressmonitor.pollinterval", "200");
    writeSite(new File(confDir, "mapred-site.xml"), mapred);

    List<String> dns = new ArrayList<>();
    for (DataNode dn : dfs.getDataNodes()) {
      dns.add("127.0.0.1:" + dn.getXferPort());
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    String pid = ManagementFactory.getRuntimeMXBean().getName().split("@")[0];
    StringBuilder json = new StringBuilder("{\n");
    json.append("  \"namenode\": \"").append(fsUri).append("\",\n");
    json.append("  \"namenode_http\": \"127.0.0.1:")
        .append(dfs.getNameNode().getHttpAddress().getPort()).append("\",\n");
    json.append("  \"resourcemanager\": \"").append(live.get("yarn.resourcemanager.address"))
        .append("\",\n");
    json.append("  \"resourcemanager_http\": \"")
        .append(live.get("yarn.resourcemanager.webapp.address")).append("\",\n");
    json.append("  \"conf_dir\": \"").append(confPath).append("\",\n");
    json.append("  \"datanodes\": [");
    for (int i = 0; i < dns.size(); i++) {
      json.append(i > 0 ? ", " : "").append('"').append(dns.get(i)).append('"');
    }
    json.append("],\n");
    json.append("  \"replication\": ").append(replication).append(",\n");
    json.append("  \"nodemanager_memory_mb\": ").append(nmMemory).append(",\n");
    json.append("  \"hadoop_version\": \"").append(VersionInfo.getVersion()).append("\",\n");
    json.append("  \"startup_seconds\": ").append(String.format("%.1f", seconds)).append(",\n");
    json.append("  \"pid\": ").append(pid).append("\n}\n");
    File tmp = new File(dir, "cluster.json.tmp");
    Files.writeString(tmp.toPath(), json.toString(), StandardCharsets.UTF_8);
    Files.move(tmp.toPath(), new File(dir, "cluster.json").toPath(),
        StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    System.err.println("HadoopCluster: ready in " + String.format("%.1f", seconds) + " s\n" + json);
    stopped.await();
  }

  private static void writeSite(File file, Map<String, String> properties) throws IOException {
    Configuration c = new Configuration(false);
    for (Map.Entry<String, String> e : properties.entrySet()) {
      c.set(e.getKey(), e.getValue());
    }
    try (OutputStream out = new FileOutputStream(file)) {
      c.writeXml(out);
    }
  }
}
