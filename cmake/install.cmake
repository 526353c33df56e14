# The embedding libraries (liblasio.a, liblasio.so: the runtime with the Lua
# facade compiled in, as in every build of the objects), the embed example, and what `cmake --install` puts
# under the prefix: the lasio command, lasio.h, the libraries, lasio.pc,
# the C module and the Lua files in the standard Lua paths, the man page.
# Included from the top-level CMakeLists.txt.
# SPDX-License-Identifier: MIT
include(GNUInstallDirs)

# Where the Lua module goes; a LuaRocks build sets both to its tree.
set(LASIO_INSTALL_CMOD "${CMAKE_INSTALL_LIBDIR}/lua/5.4" CACHE STRING
    "Directory for the C module (lasio/core.so), relative to the prefix")
set(LASIO_INSTALL_LMOD "${CMAKE_INSTALL_DATADIR}/lua/5.4" CACHE STRING
    "Directory for the Lua files (lasio/*.lua), relative to the prefix")
option(LASIO_MODULE_ONLY "Install only the Lua module (LuaRocks)" OFF)

add_library(lasio_static STATIC $<TARGET_OBJECTS:lasio_objects>
    $<TARGET_OBJECTS:lasio_llhttp>)
target_include_directories(lasio_static PUBLIC src ${LUA_INCLUDE_DIRS})
target_link_libraries(lasio_static PUBLIC PkgConfig::LIBEVENT resolv
    Threads::Threads)
set_target_properties(lasio_static PROPERTIES OUTPUT_NAME lasio)
lasio_target_options(lasio_static)

# liblua is not linked in: its symbols come from the host program, which
# links the one Lua it uses (as Lua C modules do).
add_library(lasio_shared SHARED $<TARGET_OBJECTS:lasio_objects>
    $<TARGET_OBJECTS:lasio_llhttp>)
target_include_directories(lasio_shared PRIVATE ${LUA_INCLUDE_DIRS})
target_link_libraries(lasio_shared PRIVATE PkgConfig::LIBEVENT resolv
    Threads::Threads)
set_target_properties(lasio_shared PROPERTIES OUTPUT_NAME lasio
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    C_VISIBILITY_PRESET hidden)
lasio_target_options(lasio_shared)

# examples/embed: a host with its own libevent work running Lua scripts.
add_executable(embed_host examples/embed/host.c)
target_link_libraries(embed_host PRIVATE lasio_static PkgConfig::LUA
    Threads::Threads m)
set_target_properties(embed_host PROPERTIES OUTPUT_NAME host
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples/embed)
lasio_target_options(embed_host)
# ... and one that runs untrusted scripts with budgets (docs/UNTRUSTED.md).
add_executable(embed_untrusted examples/embed/untrusted.c)
target_link_libraries(embed_untrusted PRIVATE lasio_static PkgConfig::LUA
    Threads::Threads m)
set_target_properties(embed_untrusted PROPERTIES OUTPUT_NAME untrusted
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples/embed)
lasio_target_options(embed_untrusted)

# lasio.pc finds the prefix from its own place, so the tree can move (and
# `cmake --install --prefix` works).
file(RELATIVE_PATH LASIO_PC_TO_PREFIX
    "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${CMAKE_SOURCE_DIR}/cmake/lasio.pc.in
    ${CMAKE_BINARY_DIR}/lasio.pc @ONLY)

if(LASIO_MODULE_ONLY) # build nothing but the module
    foreach(t lasio lasio_static lasio_shared embed_host embed_api_test
            embed_threads_test embed_oom_test)
        set_target_properties(${t} PROPERTIES EXCLUDE_FROM_ALL ON)
    endforeach()
endif()

install(TARGETS lasio_module
    LIBRARY DESTINATION ${LASIO_INSTALL_CMOD}/lasio)
install(FILES ${LASIO_LUA_FILES} DESTINATION ${LASIO_INSTALL_LMOD}/lasio)
if(NOT LASIO_MODULE_ONLY)
    install(TARGETS lasio RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    install(TARGETS lasio_static lasio_shared
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(FILES src/lasio.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    install(FILES ${CMAKE_BINARY_DIR}/lasio.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
    install(FILES docs/lasio.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
